import { buildRevocationEvent } from '@app/contracts';
import { RevocationStore } from './revocation-store';

const RETENTION = 305_000; // 5-minute tokens + 5 s clock tolerance
const T0 = Date.UTC(2026, 10, 29, 10, 0, 0, 400); // .400 into a second, on purpose

function setup() {
  let now = T0;
  const store = new RevocationStore({ retentionMs: RETENTION, now: () => now });
  return { store, advance: (ms: number) => (now += ms), now: () => now };
}
const logout = (sessionId: string, at = T0, userId = 'alice') =>
  buildRevocationEvent({
    issuer: 'i',
    userId,
    sessionId,
    initiatingEntity: 'user',
    reason: 'user_logout',
    at,
  });
const everywhere = (at: number, userId = 'alice') =>
  buildRevocationEvent({ issuer: 'i', userId, initiatingEntity: 'user', reason: 'logout_all', at });
const token = (sid: string, iatMs: number, sub = 'alice') => ({
  sub,
  sid,
  iat: Math.floor(iatMs / 1000),
});

describe('RevocationStore', () => {
  it('rejects every token of a revoked session, and only that session', () => {
    const { store } = setup();
    expect(store.apply(logout('s1'))).toBe(true);
    expect(store.check(token('s1', T0 - 60_000))).toBe('session_revoked');
    expect(store.check(token('s1', T0 + 60_000))).toBe('session_revoked');
    expect(store.check(token('s2', T0 - 60_000))).toBeUndefined();
  });

  it('is idempotent: a duplicate changes nothing', () => {
    const { store } = setup();
    const event = logout('s1');
    expect(store.apply(event)).toBe(true);
    expect(store.apply(event)).toBe(false);
    expect(store.apply(everywhere(T0))).toBe(true);
    expect(store.apply(everywhere(T0))).toBe(false);
    expect(store.apply(everywhere(T0 - 1_000))).toBe(false); // an older one adds nothing
    expect(store.size()).toEqual({ sessions: 1, users: 1 });
  });

  describe('user-wide revocation is exact across the same second', () => {
    it('rejects tokens issued at or before the instant, including earlier in the same second', () => {
      const { store } = setup();
      store.apply(everywhere(T0));
      expect(store.check(token('old', T0 - 400))).toBe('user_revoked'); // same second, before
      expect(store.check(token('old', T0 - 3_600_000))).toBe('user_revoked');
      expect(store.check(token('other-user', T0 - 400, 'bob'))).toBeUndefined();
    });

    it('never rejects a session created after it (issued with iat in the next second)', () => {
      const { store } = setup();
      store.apply(everywhere(T0));
      const issuedAfter = (Math.floor(T0 / 1000) + 1) * 1000; // what the session service guarantees
      expect(store.check(token('new', issuedAfter))).toBeUndefined();
      // …and on an exact second boundary too.
      const onBoundary = Math.floor(T0 / 1000) * 1000;
      store.apply(everywhere(onBoundary + 1000, 'carol'));
      expect(store.check(token('new', onBoundary + 2000, 'carol'))).toBeUndefined();
      expect(store.check(token('old', onBoundary + 1000, 'carol'))).toBe('user_revoked');
    });
  });

  it('forgets entries once no token they could reject is alive', () => {
    const { store, advance } = setup();
    store.apply(logout('s1'));
    store.apply(everywhere(T0));
    advance(RETENTION - 1);
    expect(store.prune()).toBe(0);
    expect(store.check(token('s1', T0))).toBe('session_revoked');
    advance(1);
    expect(store.prune()).toBe(2);
    expect(store.size()).toEqual({ sessions: 0, users: 0 });
  });

  it('ignores events too old to matter (a replay from before the window)', () => {
    const { store } = setup();
    expect(store.apply(logout('ancient', T0 - RETENTION))).toBe(false);
    expect(store.size()).toEqual({ sessions: 0, users: 0 });
  });
});
