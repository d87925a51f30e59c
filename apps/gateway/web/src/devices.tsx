import { useCallback, useEffect, useState } from 'preact/hooks';
import { api, ApiError, type Device } from './api';
import { formatTime } from './format';
import { Messages } from './messages';

export function Devices({ onSignedOut }: { onSignedOut: (why: string) => void }) {
  const [devices, setDevices] = useState<Device[] | undefined>();
  const [status, setStatus] = useState<string | undefined>();
  const [error, setError] = useState<string | undefined>();

  const load = useCallback(async () => {
    try {
      setDevices(await api.devices());
    } catch (caught) {
      if (!(caught instanceof ApiError && caught.status === 401))
        setError('Your devices could not be loaded.');
    }
  }, []);
  useEffect(() => {
    void load();
  }, [load]);

  async function act(what: () => Promise<unknown>, done: string) {
    setError(undefined);
    try {
      await what();
      setStatus(done);
      await load();
    } catch (caught) {
      if (!(caught instanceof ApiError && caught.status === 401))
        setError(`That did not work: ${(caught as Error).message}`);
    }
  }

  const others = (devices ?? []).filter((device) => !device.current);
  return (
    <section aria-labelledby="devices-title">
      <h1 id="devices-title">Your devices</h1>
      <Messages status={status} error={error} />
      {devices === undefined ? (
        <p>Loading…</p>
      ) : (
        <ul class="devices" data-testid="devices">
          {devices.map((device) => (
            <li key={device.session_id} data-session={device.session_id}>
              <span>
                <strong>{device.device.name}</strong>
                {device.current && <em class="tag">this device</em>}
                <small>
                  {device.device.platform ?? 'unknown platform'}
                  {device.user_agent ? ` · ${browserOf(device.user_agent)}` : ''}
                </small>
                <small>
                  signed in {formatTime(device.created_at)} · last active{' '}
                  {formatTime(device.last_active_at)}
                </small>
              </span>
              {!device.current && (
                <button
                  type="button"
                  onClick={() =>
                    void act(
                      () => api.endDevice(device.session_id),
                      `${device.device.name} is signed out.`,
                    )
                  }
                >
                  Sign out <span class="visually-hidden">{device.device.name}</span>
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
      <div class="actions">
        <button
          type="button"
          disabled={others.length === 0}
          onClick={() =>
            void act(
              () => Promise.all(others.map((device) => api.endDevice(device.session_id))),
              'All other devices are signed out.',
            )
          }
        >
          Sign out all other devices
        </button>
        <button
          type="button"
          class="danger"
          onClick={() =>
            void api.logoutEverywhere().then(
              () => {
                onSignedOut('You signed out everywhere.');
              },
              () => {
                setError('Signing out everywhere did not work; try again.');
              },
            )
          }
        >
          Sign out everywhere
        </button>
      </div>
    </section>
  );
}

/** The browser family from a User-Agent header, for the list. */
function browserOf(userAgent: string): string {
  const match = /(Edg|Firefox|Chrome|Chromium|Safari|curl|node)[/ ]?[\d.]*/i.exec(userAgent);
  return match?.[1] ?? 'other client';
}
