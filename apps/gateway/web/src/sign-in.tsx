import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, thisDevice, type Device, type Provider, type SessionInfo } from './api';
import { formatTime } from './format';

interface Props {
  /** Why the user is here (signed out elsewhere, and why). */
  notice: string | undefined;
  onSignedIn: (session: SessionInfo) => void;
}

/** Why a sign-in through the provider came back without a session (the gateway's `sso_error`). */
const SSO_ERRORS: Record<string, string> = {
  flow_missing:
    'The sign-in with your provider could not be matched to this browser (it took too long, or started in another tab). Please try again.',
  flow_expired: 'The sign-in with your provider took too long. Please try again.',
  state_mismatch: 'The answer from your provider did not belong to this sign-in. Please try again.',
  origin_mismatch: 'The sign-in came back at another address. Please try again from here.',
  access_denied: 'The sign-in at your provider was cancelled.',
  provider_error: 'Your provider refused the sign-in.',
  provider_unavailable: 'Your provider could not be reached. Try again shortly.',
  token_exchange_failed: 'The answer from your provider could not be verified. Please try again.',
  id_token_refused: 'This service did not accept the sign-in from your provider.',
  user_disabled: 'Your account is disabled here.',
  device_limit:
    'Your plan allows no more devices. Sign out one of your devices (or sign in with your password here to choose one), then try again.',
  too_many_attempts: 'Too many attempts. Wait a minute, then try again.',
  session_unavailable: 'Sign-in is unavailable right now. Try again shortly.',
};

/** The error a sign-in through the provider came back with (`/?sso_error=…`), taken off the URL. */
function takeSsoError(): string | undefined {
  const params = new URLSearchParams(location.search);
  const code = params.get('sso_error');
  if (code === null) return undefined;
  params.delete('sso_error');
  const rest = params.toString();
  history.replaceState(null, '', `${location.pathname}${rest ? `?${rest}` : ''}${location.hash}`);
  return SSO_ERRORS[code] ?? `Sign-in with your provider failed (${code}).`;
}

export function SignIn({ notice, onSignedIn }: Props) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [remember, setRemember] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>(takeSsoError);
  /** OpenID providers the gateway offers ("Sign in with …"). */
  const [providers, setProviders] = useState<Provider[]>([]);

  useEffect(() => {
    api.providers().then(setProviders, () => {
      setProviders([]);
    });
  }, []);
  /** At a device limit: the user's devices, one of which to sign out. */
  const [devices, setDevices] = useState<Device[] | undefined>();
  /** Too many attempts: when the user may try again (ms). */
  const [waitUntil, setWaitUntil] = useState<number | undefined>();
  const [now, setNow] = useState(Date.now());

  useEffect(() => {
    if (waitUntil === undefined) return;
    const timer = setInterval(() => {
      setNow(Date.now());
    }, 1_000);
    return () => {
      clearInterval(timer);
    };
  }, [waitUntil]);
  const waitSeconds = waitUntil === undefined ? 0 : Math.ceil((waitUntil - now) / 1000);

  async function signIn(endSessionId?: string) {
    setBusy(true);
    setError(undefined);
    try {
      const session = await api.login({
        username,
        password,
        remember,
        device: thisDevice(),
        ...(endSessionId ? { end_session_id: endSessionId } : {}),
      });
      setPassword('');
      onSignedIn(session);
    } catch (caught) {
      if (!(caught instanceof ApiError)) setError('The server could not be reached. Try again.');
      else if (caught.status === 401) setError('Wrong username or password.');
      else if (caught.status === 409) {
        setDevices((caught.body.sessions as Device[] | undefined) ?? []);
        setError('Your plan allows no more devices. Sign one of them out to sign in here.');
      } else if (caught.status === 429) {
        setWaitUntil(Date.now() + (caught.retryAfterSeconds ?? 60) * 1000);
        setNow(Date.now());
        setError('Too many attempts.');
      } else setError(`Sign-in failed: ${caught.message}`);
    } finally {
      setBusy(false);
    }
  }

  return (
    <main class="sign-in">
      <h1>Sign in</h1>
      {notice && (
        <p class="notice" role="status" data-testid="signed-out-notice">
          {notice}
        </p>
      )}
      <form
        onSubmit={(event) => {
          event.preventDefault();
          setDevices(undefined);
          void signIn();
        }}
      >
        <label for="username">Username</label>
        <input
          id="username"
          name="username"
          autocomplete="username"
          required
          value={username}
          onInput={(e) => {
            setUsername(e.currentTarget.value);
          }}
        />
        <label for="password">Password</label>
        <input
          id="password"
          name="password"
          type="password"
          autocomplete="current-password"
          required
          value={password}
          onInput={(e) => {
            setPassword(e.currentTarget.value);
          }}
        />
        <label class="check">
          <input
            type="checkbox"
            checked={remember}
            onChange={(e) => {
              setRemember(e.currentTarget.checked);
            }}
          />
          Remember me on this device
        </label>
        <button type="submit" disabled={busy || waitSeconds > 0}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
      {providers.map((provider) => (
        <p key={provider.login_url} class="provider">
          <a class="button" href={`${provider.login_url}?return_to=${encodeURIComponent('/')}`}>
            Sign in with {provider.name}
          </a>
        </p>
      ))}
      {error && (
        <p class="error" role="alert">
          {error}
          {waitSeconds > 0 && ` Try again in ${waitSeconds} s.`}
        </p>
      )}
      {devices && devices.length > 0 && (
        <section aria-labelledby="limit-title">
          <h2 id="limit-title">Your devices</h2>
          <ul class="devices">
            {devices.map((device) => (
              <li key={device.session_id}>
                <span>
                  <strong>{device.device.name}</strong>
                  <small>last active {formatTime(device.last_active_at)}</small>
                </span>
                <button
                  type="button"
                  disabled={busy}
                  onClick={() => void signIn(device.session_id)}
                >
                  Sign out {device.device.name} and sign in here
                </button>
              </li>
            ))}
          </ul>
        </section>
      )}
    </main>
  );
}
