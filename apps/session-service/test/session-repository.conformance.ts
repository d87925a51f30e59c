import { SESSION_REVOKED, type RevocationEvent } from '@app/contracts';
import type { SessionRepository } from '../src/sessions/session.repository';
import type { CreateResult, RotateResult, SignIn } from '../src/sessions/session.types';
import type { SessionRules } from './in-memory-session.repository';

/** A session end as the outbox records it. */
export interface Ended {
  user: string;
  /** Absent for a user-wide ("log out everywhere") event. */
  session?: string;
  initiator: string;
  reason: string;
  at: number;
}

/** A repository under test, its clock, and what it wrote to its outbox. */
export interface RepositoryHarness {
  repository: SessionRepository;
  now(): number;
  advance(ms: number): void;
  /** Every event written since the harness started, in order of writing. */
  events(): Promise<Ended[]>;
  stop(): Promise<void>;
}

/** The rules every harness is started with. */
export const CONFORMANCE_RULES: SessionRules = {
  issuer: 'https://sessions.conformance.test',
  idleMs: 60_000,
  absoluteMs: 600_000,
  rememberMs: 3_600_000,
  defaultPlan: { max_devices: 3, policy: 'evict_oldest' },
  graceMs: 10_000,
  revocationRetentionMs: 900_000,
  providerLogoutMemoryMs: 310_000,
};

/** An outbox event, as {@link Ended}. */
export function ended(event: RevocationEvent): Ended {
  const revoked = event.events[SESSION_REVOKED];
  return {
    user: revoked.subject.user.id,
    ...(revoked.subject.session ? { session: revoked.subject.session.id } : {}),
    initiator: revoked.initiating_entity,
    reason: revoked.reason_admin?.en ?? '',
    at: Math.round(revoked.event_timestamp * 1000),
  };
}

let users = 0;
const signIn = (userId: string, extra: Partial<SignIn> = {}): SignIn => ({
  userId,
  roles: ['user'],
  device: { name: 'phone', platform: 'ios' },
  remember: false,
  userAgent: 'conformance/1',
  ip: '127.0.0.1',
  ...extra,
});

function created(result: CreateResult) {
  if (result.kind !== 'created') throw new Error(`expected created, got ${result.kind}`);
  return result;
}
function rotated(result: RotateResult) {
  if (result.kind !== 'rotated') throw new Error(`expected rotated, got ${result.kind}`);
  return result;
}

/**
 * What any {@link SessionRepository} must do: the session rules (device limits, rotation and
 * reuse, every way a session ends with the event it writes, expiry, "log out everywhere" and
 * the `iat` after it). Run against Redis (integration) and against the in-memory fake (unit),
 * so the fake the service's unit specs use cannot drift from the real store.
 */
export function describeSessionRepository(
  name: string,
  start: (rules: SessionRules) => RepositoryHarness | Promise<RepositoryHarness>,
): void {
  describe(`SessionRepository conformance: ${name}`, () => {
    let h: RepositoryHarness;
    let repo: SessionRepository;
    let user: string;

    beforeAll(async () => {
      h = await start(CONFORMANCE_RULES);
      repo = h.repository;
    });
    afterAll(async () => {
      await h.stop();
    });
    beforeEach(() => {
      users += 1;
      user = `user-${users}-${process.pid}`;
    });

    const eventsOf = async (userId: string) =>
      (await h.events()).filter((event) => event.user === userId);

    it('opens a session: listed, owned, found from its refresh token; no event', async () => {
      const session = created(await repo.create(signIn(user, { roles: ['admin'] }), h.now()));
      expect(session).toMatchObject({ userId: user, roles: ['admin'], evicted: 0 });
      expect(session.absoluteAt).toBe(h.now() + CONFORMANCE_RULES.absoluteMs);
      expect(session.issuedAt).toBe(Math.floor(h.now() / 1000));
      expect(await repo.ownerOf(session.sessionId, h.now())).toBe(user);
      expect(await repo.sessionOfRefreshToken(session.refreshToken)).toBe(session.sessionId);
      expect(await repo.list(user, h.now())).toEqual([
        {
          session_id: session.sessionId,
          device: { name: 'phone', platform: 'ios' },
          user_agent: 'conformance/1',
          ip: '127.0.0.1',
          created_at: new Date(h.now()).toISOString(),
          last_active_at: new Date(h.now()).toISOString(),
        },
      ]);
      expect(await eventsOf(user)).toEqual([]);
    });

    it('plans: the default until one is set', async () => {
      expect(await repo.plan(user)).toEqual(CONFORMANCE_RULES.defaultPlan);
      await repo.setPlan(user, { max_devices: 1, policy: 'reject' });
      expect(await repo.plan(user)).toEqual({ max_devices: 1, policy: 'reject' });
    });

    it('evict_oldest: at the limit the least recently active session ends (policy, device_limit)', async () => {
      await repo.setPlan(user, { max_devices: 2, policy: 'evict_oldest' });
      const first = created(await repo.create(signIn(user), h.now()));
      h.advance(1_000);
      const second = created(await repo.create(signIn(user), h.now()));
      h.advance(1_000);
      // The first is refreshed: now the second is the least recently active.
      rotated(await repo.rotate(first.refreshToken, h.now()));
      h.advance(1_000);
      const third = created(await repo.create(signIn(user), h.now()));
      expect(third.evicted).toBe(1);
      expect(await repo.ownerOf(second.sessionId, h.now())).toBeUndefined();
      expect((await repo.list(user, h.now())).map((s) => s.session_id)).toEqual([
        third.sessionId,
        first.sessionId,
      ]);
      expect(await eventsOf(user)).toEqual([
        {
          user,
          session: second.sessionId,
          initiator: 'policy',
          reason: 'device_limit',
          at: h.now(),
        },
      ]);
    });

    it('reject: at the limit sign-in is refused with the live sessions, least recent first', async () => {
      await repo.setPlan(user, { max_devices: 2, policy: 'reject' });
      const first = created(await repo.create(signIn(user), h.now()));
      h.advance(1_000);
      const second = created(await repo.create(signIn(user), h.now()));
      const refused = await repo.create(signIn(user), h.now());
      expect(refused.kind).toBe('rejected');
      expect(refused.kind === 'rejected' && refused.sessions.map((s) => s.session_id)).toEqual([
        first.sessionId,
        second.sessionId,
      ]);
      expect(await eventsOf(user)).toEqual([]);
    });

    it("replacing at the limit: the named session of this user ends (user, replaced_at_sign_in); another user's is ignored", async () => {
      await repo.setPlan(user, { max_devices: 2, policy: 'reject' });
      const first = created(await repo.create(signIn(user), h.now()));
      const second = created(await repo.create(signIn(user), h.now()));
      const stranger = `${user}-stranger`;
      const theirs = created(await repo.create(signIn(stranger), h.now()));
      const foreign = { ...signIn(user), replaceSessionId: theirs.sessionId };
      expect((await repo.create(foreign, h.now())).kind).toBe('rejected');
      const replacing = { ...signIn(user), replaceSessionId: first.sessionId };
      const third = created(await repo.create(replacing, h.now()));
      expect(third.evicted).toBe(0);
      expect((await repo.list(user, h.now())).map((s) => s.session_id).sort()).toEqual(
        [second.sessionId, third.sessionId].sort(),
      );
      expect(await eventsOf(user)).toEqual([
        {
          user,
          session: first.sessionId,
          initiator: 'user',
          reason: 'replaced_at_sign_in',
          at: h.now(),
        },
      ]);
      expect((await repo.list(stranger, h.now())).map((s) => s.session_id)).toEqual([
        theirs.sessionId,
      ]);
    });

    it('an ID token opens one session only', async () => {
      const idToken = { use: `jti-${user}`, until: h.now() + 60_000 };
      created(await repo.create(signIn(user, { idToken }), h.now()));
      expect(await repo.create(signIn(user, { idToken }), h.now())).toEqual({ kind: 'replayed' });
      created(
        await repo.create(signIn(user, { idToken: { ...idToken, use: `other-${user}` } }), h.now()),
      );
    });

    it('provider logout by sid: that provider session’s sessions end (system), others stay; later sign-ins of it are refused', async () => {
      const issuer = 'https://idp.conformance.test';
      const provider = (sid?: string) => ({ provider: { issuer, sub: 'sub-1', sid } });
      const a1 = created(await repo.create(signIn(user, provider('sid-a')), h.now()));
      const a2 = created(await repo.create(signIn(user, provider('sid-a')), h.now()));
      const b = created(await repo.create(signIn(user, provider('sid-b')), h.now()));
      const how = { initiator: 'system' as const, reason: 'signed out at the identity provider' };
      // A sub of someone else with this sid ends nothing.
      expect(
        await repo.endProviderSessions(
          { issuer, sid: 'sid-a', sub: 'sub-2', userId: user },
          how,
          h.now(),
        ),
      ).toBe(0);
      // sid only: the user is found from the sid.
      expect(await repo.endProviderSessions({ issuer, sid: 'sid-a' }, how, h.now())).toBe(2);
      expect(await repo.ownerOf(a1.sessionId, h.now())).toBeUndefined();
      expect(await repo.ownerOf(a2.sessionId, h.now())).toBeUndefined();
      expect(await repo.ownerOf(b.sessionId, h.now())).toBe(user);
      expect((await eventsOf(user)).map((e) => [e.session, e.initiator, e.reason]).sort()).toEqual(
        [
          [a1.sessionId, 'system', how.reason],
          [a2.sessionId, 'system', how.reason],
        ].sort(),
      );
      expect(await repo.endProviderSessions({ issuer, sid: 'sid-a' }, how, h.now())).toBe(0);
      expect(await repo.create(signIn(user, provider('sid-a')), h.now())).toEqual({
        kind: 'provider_ended',
      });
      // (How long that is remembered, providerLogoutMemoryMs, is a key's TTL in Redis, which a
      // manual clock does not move.)
      expect(await repo.endProviderSessions({ issuer, sid: 'never-seen' }, how, h.now())).toBe(0);
    });

    it('provider logout by sub: every session of the user from that issuer, each with its event', async () => {
      const issuer = 'https://idp.conformance.test';
      const how = { initiator: 'system' as const, reason: 'signed out at the identity provider' };
      const withSid = created(
        await repo.create(signIn(user, { provider: { issuer, sub: 'sub-1', sid: 's1' } }), h.now()),
      );
      const withoutSid = created(
        await repo.create(signIn(user, { provider: { issuer, sub: 'sub-1' } }), h.now()),
      );
      const other = `${user}-other`;
      const others = created(await repo.create(signIn(other), h.now()));
      expect(
        await repo.endProviderSessions({ issuer, sub: 'sub-1', userId: user }, how, h.now()),
      ).toBe(2);
      expect((await eventsOf(user)).map((e) => e.session).sort()).toEqual(
        [withSid.sessionId, withoutSid.sessionId].sort(),
      );
      expect(await repo.ownerOf(others.sessionId, h.now())).toBe(other);
    });

    it('rotation: a new token; a rotated one within the grace window gets a sibling', async () => {
      const session = created(await repo.create(signIn(user), h.now()));
      h.advance(2_000);
      const next = rotated(await repo.rotate(session.refreshToken, h.now()));
      expect(next).toMatchObject({ sessionId: session.sessionId, userId: user, roles: ['user'] });
      expect(next.refreshToken).not.toBe(session.refreshToken);
      expect(next.absoluteAt).toBe(session.absoluteAt);
      expect(next.issuedAt).toBe(Math.floor(h.now() / 1000));
      expect((await repo.list(user, h.now()))[0]?.last_active_at).toBe(
        new Date(h.now()).toISOString(),
      );
      h.advance(CONFORMANCE_RULES.graceMs - 1);
      const sibling = rotated(await repo.rotate(session.refreshToken, h.now()));
      expect(sibling.sessionId).toBe(session.sessionId);
      // Both branches live on.
      rotated(await repo.rotate(next.refreshToken, h.now()));
      rotated(await repo.rotate(sibling.refreshToken, h.now()));
      expect(await repo.sessionOfRefreshToken(session.refreshToken)).toBe(session.sessionId);
      expect(await eventsOf(user)).toEqual([]);
    });

    it('reuse past the grace window ends the session (system, refresh_token_reuse)', async () => {
      const session = created(await repo.create(signIn(user), h.now()));
      const next = rotated(await repo.rotate(session.refreshToken, h.now()));
      h.advance(CONFORMANCE_RULES.graceMs + 1);
      expect(await repo.rotate(session.refreshToken, h.now())).toEqual({
        kind: 'reused',
        sessionId: session.sessionId,
      });
      expect(await repo.ownerOf(session.sessionId, h.now())).toBeUndefined();
      // The whole family is gone with it.
      expect(await repo.rotate(next.refreshToken, h.now())).toEqual({ kind: 'invalid' });
      expect(await repo.sessionOfRefreshToken(next.refreshToken)).toBeUndefined();
      expect(await eventsOf(user)).toEqual([
        {
          user,
          session: session.sessionId,
          initiator: 'system',
          reason: 'refresh_token_reuse',
          at: h.now(),
        },
      ]);
    });

    it('an unknown secret of a known family is a reuse; a malformed token is invalid', async () => {
      const session = created(await repo.create(signIn(user), h.now()));
      const forged = session.refreshToken.replace(/\.[^.]+$/, `.${'A'.repeat(43)}`);
      expect(await repo.rotate(forged, h.now())).toEqual({
        kind: 'reused',
        sessionId: session.sessionId,
      });
      for (const garbage of ['', 'rt0_abc.def', `${session.refreshToken}x`])
        expect(await repo.rotate(garbage, h.now())).toEqual({ kind: 'invalid' });
    });

    it('keeps only the newest 8 rotated secrets, even within the grace window', async () => {
      const session = created(await repo.create(signIn(user), h.now()));
      const tokens = [session.refreshToken];
      for (let i = 0; i < 10; i += 1) {
        h.advance(10);
        tokens.push(rotated(await repo.rotate(tokens.at(-1)!, h.now())).refreshToken);
      }
      // tokens[0..9] were rotated; the 8 newest (tokens[2..9]) still get siblings.
      rotated(await repo.rotate(tokens[2]!, h.now()));
      expect(await repo.rotate(tokens[1]!, h.now())).toEqual({
        kind: 'reused',
        sessionId: session.sessionId,
      });
    });

    it('idle expiry: the refresh is refused and the session ends (system, expired)', async () => {
      const session = created(await repo.create(signIn(user), h.now()));
      h.advance(CONFORMANCE_RULES.idleMs);
      expect(await repo.ownerOf(session.sessionId, h.now())).toBeUndefined();
      expect(await repo.rotate(session.refreshToken, h.now())).toEqual({ kind: 'invalid' });
      expect(await repo.list(user, h.now())).toEqual([]);
      expect(await eventsOf(user)).toEqual([
        { user, session: session.sessionId, initiator: 'system', reason: 'expired', at: h.now() },
      ]);
    });

    it('remember me: the idle timeout is the long one', async () => {
      const session = created(await repo.create(signIn(user, { remember: true }), h.now()));
      expect(session.absoluteAt).toBe(h.now() + CONFORMANCE_RULES.rememberMs);
      h.advance(CONFORMANCE_RULES.idleMs * 2);
      expect(await repo.ownerOf(session.sessionId, h.now())).toBe(user);
      rotated(await repo.rotate(session.refreshToken, h.now()));
    });

    it('ending a session: only its owner may, once; the event says who and why', async () => {
      const session = created(await repo.create(signIn(user), h.now()));
      const how = { initiator: 'user', reason: 'user_logout' } as const;
      expect(await repo.end(session.sessionId, { ...how, owner: 'someone-else' }, h.now())).toBe(
        undefined,
      );
      expect(await repo.ownerOf(session.sessionId, h.now())).toBe(user);
      expect(await repo.end(session.sessionId, { ...how, owner: user }, h.now())).toBe(user);
      expect(await repo.end(session.sessionId, how, h.now())).toBeUndefined();
      expect(await repo.end('s0_nosuchsessionatall', how, h.now())).toBeUndefined();
      expect(await repo.rotate(session.refreshToken, h.now())).toEqual({ kind: 'invalid' });
      expect(await eventsOf(user)).toEqual([
        { user, session: session.sessionId, initiator: 'user', reason: 'user_logout', at: h.now() },
      ]);
    });

    it('log out everywhere: every session, one user-wide event, later tokens stamped after it', async () => {
      const a = created(await repo.create(signIn(user), h.now()));
      const b = created(await repo.create(signIn(user), h.now()));
      h.advance(1);
      const at = h.now();
      expect(await repo.endAll(user, { initiator: 'admin', reason: 'admin' }, at)).toBe(2);
      expect(await repo.list(user, h.now())).toEqual([]);
      for (const session of [a, b]) {
        expect(await repo.ownerOf(session.sessionId, h.now())).toBeUndefined();
        expect(await repo.rotate(session.refreshToken, h.now())).toEqual({ kind: 'invalid' });
      }
      expect(await eventsOf(user)).toEqual([{ user, initiator: 'admin', reason: 'admin', at }]);
      // A session opened in the same second: its token's iat is strictly after the event.
      const later = created(await repo.create(signIn(user), h.now()));
      expect(later.issuedAt * 1000).toBeGreaterThan(at);
      expect(later.issuedAt).toBe(Math.floor(at / 1000) + 1);
    });

    it('log out everywhere twice in one second: a session stamped ahead gets its own event', async () => {
      h.advance(1_100 - (h.now() % 1_000)); // early in a second, so `first + 1` is in it too
      const first = h.now();
      await repo.endAll(user, { initiator: 'user', reason: 'logout_all' }, first);
      const ahead = created(await repo.create(signIn(user), h.now()));
      expect(ahead.issuedAt * 1000).toBeGreaterThan(h.now());
      h.advance(1);
      const second = h.now();
      expect(await repo.endAll(user, { initiator: 'user', reason: 'logout_all' }, second)).toBe(1);
      expect(await eventsOf(user)).toEqual([
        { user, initiator: 'user', reason: 'logout_all', at: first },
        { user, session: ahead.sessionId, initiator: 'user', reason: 'logout_all', at: second },
        { user, initiator: 'user', reason: 'logout_all', at: second },
      ]);
    });

    it('sweep: ends every expired session of every user, each with its event', async () => {
      const others = [`${user}-a`, `${user}-b`];
      const expiring = await Promise.all(
        others.map(async (id) => created(await repo.create(signIn(id), h.now()))),
      );
      const kept = created(await repo.create(signIn(user, { remember: true }), h.now()));
      h.advance(CONFORMANCE_RULES.idleMs + 1);
      expect(await repo.sweep(h.now())).toBeGreaterThanOrEqual(2);
      for (const [i, id] of others.entries()) {
        expect(await eventsOf(id)).toEqual([
          {
            user: id,
            session: expiring[i]!.sessionId,
            initiator: 'system',
            reason: 'expired',
            at: h.now(),
          },
        ]);
      }
      expect(await repo.ownerOf(kept.sessionId, h.now())).toBe(user);
      expect(await repo.sweep(h.now())).toBe(0);
    });

    describe('opaque access tokens (phantom tokens)', () => {
      const JWT = 'eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl';
      const OPAQUE = /^at_[A-Za-z0-9_-]{43}\.\d{1,5}$/;
      const opaqueSession = async (userId = user) =>
        created(await repo.create(signIn(userId, { tokenFormat: 'opaque' }), h.now()));
      const store = async (sessionId: string, jwt = JWT, ttlMs = 300_000) =>
        repo.storeOpaqueToken(sessionId, { jwt, expiresAt: h.now() + ttlMs }, h.now());

      it("the session remembers its format: rotation answers the sign-in's", async () => {
        const opaque = await opaqueSession();
        expect(opaque.tokenFormat).toBe('opaque');
        expect(rotated(await repo.rotate(opaque.refreshToken, h.now())).tokenFormat).toBe('opaque');
        const plain = created(await repo.create(signIn(user), h.now()));
        expect(plain.tokenFormat).toBe('jwt');
        expect(rotated(await repo.rotate(plain.refreshToken, h.now())).tokenFormat).toBe('jwt');
        const explicit = created(await repo.create(signIn(user, { tokenFormat: 'jwt' }), h.now()));
        expect(explicit.tokenFormat).toBe('jwt');
      });

      it('an opaque token stands for its JWT until the JWT expires; unknown ones for nothing', async () => {
        const session = created(
          await repo.create(signIn(user, { tokenFormat: 'opaque', remember: true }), h.now()),
        );
        const token = await store(session.sessionId, JWT, 60_000);
        expect(token).toMatch(OPAQUE);
        expect(token).not.toContain(JWT);
        const target = { jwt: JWT, sessionId: session.sessionId, userId: user };
        expect(await repo.resolveOpaqueToken(token!, h.now())).toEqual(target);
        // A second token (a refresh) does not replace the first: each lives until its own expiry.
        h.advance(30_000);
        const next = await store(session.sessionId, `${JWT}2`, 60_000);
        expect(next).not.toBe(token);
        expect(await repo.resolveOpaqueToken(token!, h.now())).toEqual(target);
        h.advance(30_000);
        expect(await repo.resolveOpaqueToken(token!, h.now())).toBeUndefined();
        expect(await repo.resolveOpaqueToken(next!, h.now())).toEqual({
          ...target,
          jwt: `${JWT}2`,
        });
        const forged = `at_${'A'.repeat(43)}.0`;
        for (const garbage of ['', 'at_', forged, `${next!}x`, next!.replace(/^at_/, 'rt_'), JWT])
          expect(await repo.resolveOpaqueToken(garbage, h.now())).toBeUndefined();
      });

      it('no opaque token for an ended session, and none outlives it, however it ends', async () => {
        const how = { initiator: 'user', reason: 'user_logout' } as const;
        // logout
        const loggedOut = await opaqueSession();
        const ofLoggedOut = await store(loggedOut.sessionId);
        await repo.end(loggedOut.sessionId, how, h.now());
        expect(await repo.resolveOpaqueToken(ofLoggedOut!, h.now())).toBeUndefined();
        expect(await store(loggedOut.sessionId)).toBeUndefined();
        expect(await store('s0_nosuchsessionatall')).toBeUndefined();
        // log out everywhere
        const everywhere = [await opaqueSession(), await opaqueSession()];
        const ofEverywhere = await Promise.all(everywhere.map((s) => store(s.sessionId)));
        await repo.endAll(user, { initiator: 'user', reason: 'logout_all' }, h.now());
        for (const token of ofEverywhere)
          expect(await repo.resolveOpaqueToken(token!, h.now())).toBeUndefined();
        // device limit
        await repo.setPlan(user, { max_devices: 1, policy: 'evict_oldest' });
        const evicted = await opaqueSession();
        const ofEvicted = await store(evicted.sessionId);
        h.advance(1);
        const newer = await opaqueSession();
        expect(newer.evicted).toBe(1);
        expect(await repo.resolveOpaqueToken(ofEvicted!, h.now())).toBeUndefined();
        // refresh-token reuse
        const reused = newer;
        const ofReused = await store(reused.sessionId);
        rotated(await repo.rotate(reused.refreshToken, h.now()));
        expect(await repo.resolveOpaqueToken(ofReused!, h.now())).toMatchObject({
          sessionId: reused.sessionId,
        });
        h.advance(CONFORMANCE_RULES.graceMs + 1);
        expect((await repo.rotate(reused.refreshToken, h.now())).kind).toBe('reused');
        expect(await repo.resolveOpaqueToken(ofReused!, h.now())).toBeUndefined();
        // idle expiry, before anything ended the session
        const idle = await opaqueSession(`${user}-idle`);
        const ofIdle = await store(idle.sessionId, JWT, CONFORMANCE_RULES.idleMs * 2);
        h.advance(CONFORMANCE_RULES.idleMs);
        expect(await repo.resolveOpaqueToken(ofIdle!, h.now())).toBeUndefined();
      });
    });
  });
}
