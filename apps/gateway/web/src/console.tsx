import { render } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { Admin } from './admin';
import { api, ApiError, whenSignedOut, type SessionInfo } from './api';
import { Devices } from './devices';
import { signedOutBecause, type Revocation } from './reasons';
import { SignIn } from './sign-in';

type Route = 'devices' | 'admin';
const routeOf = (hash: string): Route => (hash === '#/admin' ? 'admin' : 'devices');

function useRoute(): Route {
  const [route, setRoute] = useState(routeOf(location.hash));
  useEffect(() => {
    const follow = () => {
      setRoute(routeOf(location.hash));
    };
    addEventListener('hashchange', follow);
    return () => {
      removeEventListener('hashchange', follow);
    };
  }, []);
  return route;
}

function App() {
  /** undefined while loading; null when signed out. */
  const [session, setSession] = useState<SessionInfo | null | undefined>(undefined);
  const [notice, setNotice] = useState<string | undefined>();
  const route = useRoute();

  const signedOut = useCallback((why: string) => {
    setSession(null);
    setNotice(why);
  }, []);

  useEffect(() => {
    whenSignedOut(() => {
      signedOut('Your session ended. Please sign in again.');
    });
    api.session().then(setSession, () => {
      setSession(null);
    });
  }, [signedOut]);

  // The gateway tells this page, within milliseconds, when its session ends anywhere.
  useEffect(() => {
    if (!session) return;
    const events = new EventSource('/bff/session/events');
    // For tests and the benchmark: the page listens for its session's end from now on.
    events.onopen = () => {
      document.body.dataset.sessionStream = 'open';
    };
    // Refused for good (the session ended before the stream opened): ask once to be sure.
    events.onerror = () => {
      if (events.readyState !== EventSource.CLOSED) return;
      api.session().catch((error: unknown) => {
        if (error instanceof ApiError && error.status === 401)
          signedOut('Your session ended. Please sign in again.');
      });
    };
    events.addEventListener('ended', (message) => {
      events.close();
      signedOut(signedOutBecause(JSON.parse((message as MessageEvent<string>).data) as Revocation));
    });
    return () => {
      events.close();
      delete document.body.dataset.sessionStream;
    };
  }, [session?.session_id, signedOut]);

  if (session === undefined) return <p class="loading">Loading…</p>;
  if (session === null)
    return (
      <SignIn
        notice={notice}
        onSignedIn={(next) => {
          setNotice(undefined);
          setSession(next);
        }}
      />
    );
  const isAdmin = session.user.roles.includes('admin');
  return (
    <>
      <header class="bar">
        <strong>Sessions</strong>
        <nav aria-label="Main">
          <a href="#/" aria-current={route === 'devices' ? 'page' : undefined}>
            Your devices
          </a>
          {isAdmin && (
            <a href="#/admin" aria-current={route === 'admin' ? 'page' : undefined}>
              Admin
            </a>
          )}
        </nav>
        <span class="who">{session.user.sub}</span>
        <button
          type="button"
          onClick={() => {
            api.logout().then(
              (answer) => {
                // Signed in through a provider: sign out there too (it comes back to /).
                if (answer?.end_session_url) location.assign(answer.end_session_url);
                else signedOut('You signed out.');
              },
              () => {
                signedOut('You signed out.');
              },
            );
          }}
        >
          Sign out
        </button>
      </header>
      <main>
        {route === 'admin' && isAdmin ? (
          <Admin />
        ) : route === 'admin' ? (
          <p role="alert">Only administrators can open this page.</p>
        ) : (
          <Devices onSignedOut={signedOut} />
        )}
      </main>
    </>
  );
}

const mount = document.getElementById('app');
if (mount) render(<App />, mount);
