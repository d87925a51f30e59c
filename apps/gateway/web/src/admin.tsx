import { useState } from 'preact/hooks';
import { api, ApiError, type Device, type Plan } from './api';
import { formatTime } from './format';
import { Messages } from './messages';
import { LiveFeed } from './live-feed';

export function Admin() {
  const [userId, setUserId] = useState('');
  const [shown, setShown] = useState<string | undefined>();
  const [sessions, setSessions] = useState<Device[] | undefined>();
  const [reason, setReason] = useState('');
  const [plan, setPlan] = useState<Plan>({ max_devices: 3, policy: 'evict_oldest' });
  const [status, setStatus] = useState<string | undefined>();
  const [error, setError] = useState<string | undefined>();

  async function run(what: () => Promise<unknown>, done?: string) {
    setError(undefined);
    try {
      await what();
      if (done) setStatus(done);
    } catch (caught) {
      setError(
        caught instanceof ApiError && caught.status === 403
          ? 'You are not allowed to do that.'
          : `That did not work: ${(caught as Error).message}`,
      );
    }
  }
  const load = (id: string) =>
    run(async () => {
      setSessions(await api.userSessions(id));
      setShown(id);
    });

  return (
    <>
      <section aria-labelledby="find-title">
        <h1 id="find-title">Admin</h1>
        <form
          class="inline"
          onSubmit={(event) => {
            event.preventDefault();
            void load(userId.trim());
          }}
        >
          <div class="field">
            <label for="user-id">User id</label>
            <input
              id="user-id"
              required
              value={userId}
              onInput={(e) => {
                setUserId(e.currentTarget.value);
              }}
            />
          </div>
          <button type="submit">Find sessions</button>
        </form>
        <Messages status={status} error={error} />
        {shown !== undefined && sessions && (
          <div data-testid="admin-sessions">
            <h2>Sessions of {shown}</h2>
            <label for="reason">Reason (optional, shown in the revocation event)</label>
            <input
              id="reason"
              maxLength={200}
              value={reason}
              onInput={(e) => {
                setReason(e.currentTarget.value);
              }}
            />
            {sessions.length === 0 ? (
              <p>No live sessions.</p>
            ) : (
              <ul class="devices">
                {sessions.map((session) => (
                  <li key={session.session_id} data-session={session.session_id}>
                    <span>
                      <strong>{session.device.name}</strong>
                      <small>
                        {session.session_id} · last active {formatTime(session.last_active_at)}
                      </small>
                    </span>
                    <button
                      type="button"
                      onClick={() =>
                        void run(async () => {
                          await api.adminEnd(session.session_id, reason);
                          await load(shown);
                        }, `Session ${session.session_id} ended.`)
                      }
                    >
                      End <span class="visually-hidden">{session.device.name}</span>
                    </button>
                  </li>
                ))}
              </ul>
            )}
            <button
              type="button"
              class="danger"
              onClick={() =>
                void run(async () => {
                  await api.adminEndAll(shown, reason);
                  await load(shown);
                }, `Every session of ${shown} ended.`)
              }
            >
              End all sessions of {shown}
            </button>
            <form
              class="inline"
              aria-label={`Plan of ${shown}`}
              onSubmit={(event) => {
                event.preventDefault();
                void run(() => api.setPlan(shown, plan), `Plan of ${shown} saved.`);
              }}
            >
              <div class="field">
                <label for="max-devices">Devices allowed</label>
                <input
                  id="max-devices"
                  type="number"
                  min={1}
                  max={100}
                  value={plan.max_devices}
                  onInput={(e) => {
                    setPlan({ ...plan, max_devices: Number(e.currentTarget.value) || 1 });
                  }}
                />
              </div>
              <div class="field">
                <label for="policy">At the limit</label>
                <select
                  id="policy"
                  value={plan.policy}
                  onChange={(e) => {
                    setPlan({ ...plan, policy: e.currentTarget.value as Plan['policy'] });
                  }}
                >
                  <option value="evict_oldest">sign out the oldest device</option>
                  <option value="reject">refuse the new sign-in</option>
                </select>
              </div>
              <button type="submit">Save plan</button>
            </form>
          </div>
        )}
      </section>
      <LiveFeed />
    </>
  );
}
