import { RevocationStore, type TokenIdentity } from '@app/contracts';
import { decodeJwt } from 'jose';
import { SessionService } from '../src/sessions/session.service';
import { TokenService } from '../src/tokens/token.service';
import { outbox, sessionAppPerFile } from './session-app';

// "Log out everywhere" is exact (DESIGN invariant 2): every token of every session live at
// its instant is rejected once the events are applied, and a session created after it never
// is, however the steps interleave and however often it is called.

describe('exactness of "log out everywhere" (real Redis, manual clock)', () => {
  const file = sessionAppPerFile();

  const login = async (username: string, device = 'phone') => {
    const answer = await file.call('POST', '/auth/login', {
      body: { username, password: `${username}-pass`, device: { name: device } },
    });
    expect(answer.status).toBe(200);
    return answer.body;
  };
  const identity = (token: unknown) => decodeJwt(String(token)) as unknown as TokenIdentity;

  /** What every API instance holds once it has applied every event the service wrote. */
  async function apiView(): Promise<RevocationStore> {
    const store = new RevocationStore({ retentionMs: 306_000, now: () => file.app.clock.now() });
    for (const record of await outbox(file.app)) store.apply(record.event);
    return store;
  }

  /** Moves the manual clock to `ms` milliseconds into the next second. */
  const intoNextSecond = (ms: number) => {
    file.app.clock.advance(1_000 - (file.app.clock.now() % 1_000) + ms);
  };

  it('a refresh whose Redis step ran just before a logout-all gets a token the logout-all revokes', async () => {
    const { refresh_token } = await login('alice');
    intoNextSecond(900);
    const tokens = file.app.app.get(TokenService);
    const sign = tokens.issueAccessToken.bind(tokens);
    // Between the refresh's Redis step and the signing of its token: a logout-all in the next
    // second, and the token signed a second later still.
    const hook = jest.spyOn(tokens, 'issueAccessToken').mockImplementationOnce(async (input) => {
      intoNextSecond(100);
      await file.app.app.get(SessionService).logoutAll('alice');
      intoNextSecond(0);
      return sign(input);
    });
    const refreshed = await file.call('POST', '/auth/refresh', { body: { refresh_token } });
    hook.mockRestore();
    expect(refreshed.status).toBe(200);
    // The session ended with the logout-all: its new token must be rejected everywhere.
    expect((await apiView()).check(identity(refreshed.body.access_token))).toBeDefined();
    expect(
      (await file.call('GET', '/sessions', { token: String(refreshed.body.access_token) })).status,
    ).toBe(401);
  });

  it('any number of logout-alls leave a sign-in right after accepted: the instant never drifts ahead', async () => {
    const { access_token } = await login('bob');
    await Promise.all(
      Array.from({ length: 60 }, () =>
        file.call('POST', '/auth/logout-all', { token: String(access_token) }),
      ),
    );
    const admin = String((await login('admin', 'console')).access_token);
    for (let i = 0; i < 30; i += 1)
      expect(
        (await file.call('POST', '/admin/users/bob/logout-all', { token: admin })).status,
      ).toBe(204);
    const fresh = await login('bob', 'laptop');
    const claims = identity(fresh.access_token);
    // Issued no further ahead of the clock than one second, so every verifier accepts it.
    expect(claims.iat * 1000).toBeLessThanOrEqual(file.app.clock.now() + 1_000);
    expect(
      (await file.call('GET', '/sessions', { token: String(fresh.access_token) })).status,
    ).toBe(200);
    expect((await apiView()).check(claims)).toBeUndefined();
    // And every user-wide event is stamped at most a second past the clock.
    for (const record of await outbox(file.app))
      expect(record.eventTimestamp * 1000).toBeLessThanOrEqual(file.app.clock.now() + 1_000);
  });

  it('alternating sign-ins and logout-alls within one second: each revokes exactly the sessions before it', async () => {
    intoNextSecond(50);
    const sessions: { token: string; revokedBy: number }[] = [];
    for (let round = 0; round < 10; round += 1) {
      const { access_token } = await login('alice', `device-${round}`);
      sessions.push({ token: String(access_token), revokedBy: round });
      file.app.clock.advance(10);
      expect(
        (await file.call('POST', '/auth/logout-all', { token: String(access_token) })).status,
      ).toBe(204);
      file.app.clock.advance(10);
    }
    const last = await login('alice', 'last');
    const view = await apiView();
    for (const session of sessions) expect(view.check(identity(session.token))).toBeDefined();
    expect(view.check(identity(last.access_token))).toBeUndefined();
    expect(identity(last.access_token).iat * 1000).toBeLessThanOrEqual(
      file.app.clock.now() + 1_000,
    );
  });
});
