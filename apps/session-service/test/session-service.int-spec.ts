import { decodeJwt, decodeProtectedHeader, generateKeyPair, SignJWT } from 'jose';
import { RevocationStore, type TokenIdentity } from '@app/contracts';
import { SessionService } from '../src/sessions/session.service';
import { client, outbox, startSessionApp, type SessionApp } from './session-app';

// The session service over real HTTP against the run's real Redis: every route's answers,
// atomic device limits, refresh rotation and reuse, expiry, authorization, forged tokens,
// and the invariant that no session ends without its outbox entry.

const phone = { name: 'Phone', platform: 'ios' };
const laptop = { name: 'Laptop' };

describe('session service (real Redis, real HTTP)', () => {
  let app: SessionApp;
  let call: ReturnType<typeof client>;

  beforeAll(async () => {
    app = await startSessionApp({
      OAUTH_CLIENTS: JSON.stringify([
        { client_id: 'gateway', client_secret: 'gateway-secret-0123456789' },
      ]),
      REFRESH_REUSE_GRACE_SECONDS: '5',
      SESSION_IDLE_TIMEOUT_SECONDS: '1800',
      SESSION_ABSOLUTE_TIMEOUT_SECONDS: '43200',
    });
    call = client(app);
  });

  afterAll(async () => {
    await app.close();
  });

  /** Every session handed out, to check at the end that none ended without its event. */
  const issued: { sessionId: string; user: string }[] = [];
  async function login(username: string, device: object = phone, extra: object = {}) {
    const answer = await call('POST', '/auth/login', {
      body: { username, password: `${username}-pass`, device, ...extra },
    });
    if (answer.status === 200)
      issued.push({ sessionId: String(answer.body.session_id), user: username });
    return answer;
  }

  /** Each test its own user so plans and sessions do not interfere; the demo users share ids. */
  async function freshUser(name: 'alice' | 'bob'): Promise<string> {
    await call('POST', `/admin/users/${name}/logout-all`, { token: await adminToken() });
    return name;
  }
  async function adminToken(): Promise<string> {
    const { body } = await login('admin', { name: 'console' });
    return String(body.access_token);
  }
  async function setPlan(user: string, max_devices: number, policy: 'evict_oldest' | 'reject') {
    const { status } = await call('PUT', `/admin/users/${user}/plan`, {
      body: { max_devices, policy },
      token: await adminToken(),
    });
    expect(status).toBe(200);
  }

  describe('sign-in', () => {
    it('answers a token pair for good credentials, with the contract claims', async () => {
      await setPlan('alice', 5, 'evict_oldest');
      const { status, body, headers } = await login('alice', phone);
      expect(status).toBe(200);
      expect(body).toEqual({
        access_token: expect.any(String),
        token_type: 'Bearer',
        expires_in: 300,
        refresh_token: expect.stringMatching(/^rt\d+_[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/),
        session_id: expect.any(String),
      });
      expect(headers.get('cache-control')).toContain('no-store');
      const claims = decodeJwt(String(body.access_token));
      expect(Object.keys(claims).sort()).toEqual([
        'aud',
        'exp',
        'iat',
        'iss',
        'jti',
        'roles',
        'sid',
        'sub',
      ]);
      expect(claims).toMatchObject({ sub: 'alice', sid: body.session_id, roles: ['user'] });
      expect(decodeProtectedHeader(String(body.access_token)).kid).toEqual(expect.any(String));
    });

    it('refuses a wrong password and an unknown user alike: 401', async () => {
      const wrong = await call('POST', '/auth/login', {
        body: { username: 'alice', password: 'nope', device: phone },
      });
      const unknown = await call('POST', '/auth/login', {
        body: { username: 'mallory', password: 'x', device: phone },
      });
      expect([wrong.status, unknown.status]).toEqual([401, 401]);
      expect(wrong.body).toEqual(unknown.body);
    });

    it('answers malformed JSON and missing fields with 400 naming the field', async () => {
      const malformed = await call('POST', '/auth/login', { body: '{"username": ' });
      expect(malformed.status).toBe(400);
      const missing = await call('POST', '/auth/login', {
        body: { username: 'alice', password: 'alice-pass' },
      });
      expect(missing.status).toBe(400);
      expect(missing.body).toMatchObject({
        error: 'invalid_request',
        fields: [{ field: 'device', message: expect.any(String) }],
      });
      const nested = await call('POST', '/auth/login', {
        body: { username: 'alice', password: 'alice-pass', device: { name: '' } },
      });
      expect(nested.body.fields).toEqual([{ field: 'device.name', message: expect.any(String) }]);
    });
  });

  describe('device limits are atomic', () => {
    it('evict_oldest: 50 concurrent sign-ins leave exactly 2 sessions and 48 device_limit events', async () => {
      const user = await freshUser('bob');
      await setPlan(user, 2, 'evict_oldest');
      const before = (await outbox(app)).filter((r) => r.reason === 'device_limit').length;
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => login(user, { name: `device-${i}` })),
      );
      expect(results.map((r) => r.status)).toEqual(Array(50).fill(200));
      const live = await call('GET', '/admin/users/bob/sessions', { token: await adminToken() });
      expect(live.body).toHaveLength(2);
      const evictions = (await outbox(app)).filter((r) => r.reason === 'device_limit');
      expect(evictions.length - before).toBe(48);
      expect(
        evictions
          .slice(before)
          .every((r) => r.key === user && r.initiator === 'policy' && r.sessionId),
      ).toBe(true);
    });

    it('reject: exactly 2 of 50 concurrent sign-ins succeed, 48 get 409 listing the live sessions', async () => {
      const user = await freshUser('bob');
      await setPlan(user, 2, 'reject');
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => login(user, { name: `device-${i}` })),
      );
      const statuses = results.map((r) => r.status);
      expect(statuses.filter((s) => s === 200)).toHaveLength(2);
      expect(statuses.filter((s) => s === 409)).toHaveLength(48);
      const refused = results.find((r) => r.status === 409)!;
      expect(refused.body).toMatchObject({ error: 'device_limit_reached' });
      const listed = (refused.body.sessions as { session_id: string }[])
        .map((s) => s.session_id)
        .sort();
      expect(listed).toEqual(
        results
          .filter((r) => r.status === 200)
          .map((r) => String(r.body.session_id))
          .sort(),
      );
    });

    it('after a 409 the user names the device to sign out: it ends (user, replaced_at_sign_in) and the sign-in succeeds', async () => {
      const user = await freshUser('bob');
      await setPlan(user, 1, 'reject');
      const first = await login(user, { name: 'old phone' });
      const refused = await login(user, { name: 'new phone' });
      expect(refused.status).toBe(409);
      const [listed] = refused.body.sessions as { session_id: string; device: { name: string } }[];
      expect(listed).toMatchObject({
        session_id: first.body.session_id,
        device: { name: 'old phone' },
      });
      const signedIn = await login(
        user,
        { name: 'new phone' },
        { end_session_id: listed!.session_id },
      );
      expect(signedIn.status).toBe(200);
      expect(
        (await call('GET', '/sessions', { token: String(first.body.access_token) })).status,
      ).toBe(401);
      expect((await outbox(app)).filter((r) => r.sessionId === first.body.session_id)).toEqual([
        expect.objectContaining({ reason: 'replaced_at_sign_in', initiator: 'user' }),
      ]);
      await setPlan(user, 5, 'evict_oldest');
    });
  });

  describe('refresh tokens', () => {
    it('rotate on every use; the new pair works', async () => {
      await setPlan('alice', 5, 'evict_oldest');
      const first = await login('alice');
      const second = await call('POST', '/auth/refresh', {
        body: { refresh_token: first.body.refresh_token },
      });
      expect(second.status).toBe(200);
      expect(second.body.refresh_token).not.toBe(first.body.refresh_token);
      expect(second.body.session_id).toBe(first.body.session_id);
      const third = await call('POST', '/auth/refresh', {
        body: { refresh_token: second.body.refresh_token },
      });
      expect(third.status).toBe(200);
    });

    it('tolerate a client racing itself within the grace window', async () => {
      const { body } = await login('alice');
      const [a, b] = await Promise.all([
        call('POST', '/auth/refresh', { body: { refresh_token: body.refresh_token } }),
        call('POST', '/auth/refresh', { body: { refresh_token: body.refresh_token } }),
      ]);
      expect([a.status, b.status]).toEqual([200, 200]);
      app.clock.advance(4_000); // still inside the 5 s window
      const again = await call('POST', '/auth/refresh', {
        body: { refresh_token: body.refresh_token },
      });
      expect(again.status).toBe(200);
      expect(
        (await call('GET', '/sessions', { token: String(again.body.access_token) })).status,
      ).toBe(200);
    });

    it('reuse after the window ends the session and its family, with a refresh_token_reuse event', async () => {
      const { body } = await login('alice');
      const rotated = await call('POST', '/auth/refresh', {
        body: { refresh_token: body.refresh_token },
      });
      app.clock.advance(6_000);
      const reuse = await call('POST', '/auth/refresh', {
        body: { refresh_token: body.refresh_token },
      });
      expect(reuse.status).toBe(401);
      expect(reuse.body).toMatchObject({ error: 'invalid_grant' });
      // The whole family is dead: the legitimately rotated token too.
      const family = await call('POST', '/auth/refresh', {
        body: { refresh_token: rotated.body.refresh_token },
      });
      expect(family.status).toBe(401);
      const events = (await outbox(app)).filter((r) => r.sessionId === body.session_id);
      expect(events).toEqual([
        expect.objectContaining({
          reason: 'refresh_token_reuse',
          initiator: 'system',
          key: 'alice',
        }),
      ]);
    });

    it('rejects unknown and malformed refresh tokens with invalid_grant', async () => {
      const unknown = await call('POST', '/auth/refresh', {
        body: { refresh_token: `rt0_${'A'.repeat(22)}.${'A'.repeat(43)}` },
      });
      const garbage = await call('POST', '/auth/refresh', { body: { refresh_token: 'garbage' } });
      expect([unknown.status, garbage.status]).toEqual([401, 401]);
    });
  });

  describe('expiry (manual clock)', () => {
    it('an idle session cannot refresh and ends with an expired event', async () => {
      const { body } = await login('alice');
      app.clock.advance(31 * 60 * 1000);
      const refresh = await call('POST', '/auth/refresh', {
        body: { refresh_token: body.refresh_token },
      });
      expect(refresh.status).toBe(401);
      expect(
        (await outbox(app)).filter((r) => r.sessionId === body.session_id).map((r) => r.reason),
      ).toEqual(['expired']);
    });

    it('the absolute deadline holds even for an active session; the sweep finds it unused', async () => {
      const { body } = await login('alice');
      let refreshToken = String(body.refresh_token);
      for (let hour = 0; hour < 12; hour += 1) {
        app.clock.advance(25 * 60 * 1000);
        const refreshed = await call('POST', '/auth/refresh', {
          body: { refresh_token: refreshToken },
        });
        if (refreshed.status !== 200) break;
        refreshToken = String(refreshed.body.refresh_token);
        // No token outlives its session.
        expect(decodeJwt(String(refreshed.body.access_token)).exp! * 1000).toBeLessThanOrEqual(
          app.clock.now() + 12 * 3600 * 1000,
        );
      }
      const idle = await login('alice', laptop);
      app.clock.advance(13 * 3600 * 1000);
      expect(
        (await call('POST', '/auth/refresh', { body: { refresh_token: refreshToken } })).status,
      ).toBe(401);
      await app.app.get(SessionService).sweepExpired();
      expect(
        (await outbox(app))
          .filter((r) => r.sessionId === idle.body.session_id)
          .map((r) => r.reason),
      ).toEqual(['expired']);
    });
  });

  describe('ending sessions', () => {
    it('logout ends this session (204) and its tokens stop working here', async () => {
      const { body } = await login('alice');
      const token = String(body.access_token);
      expect((await call('POST', '/auth/logout', { token })).status).toBe(204);
      const after = await call('GET', '/sessions', { token });
      expect(after.status).toBe(401);
      expect(after.headers.get('www-authenticate')).toMatch(
        /^Bearer error="invalid_token", error_description="/,
      );
      expect((await outbox(app)).filter((r) => r.sessionId === body.session_id)).toEqual([
        expect.objectContaining({ reason: 'user_logout', initiator: 'user' }),
      ]);
    });

    it('logout-all writes one user-wide event; a session created right after gets tokens issued after it', async () => {
      await setPlan('alice', 5, 'evict_oldest');
      const devices = await Promise.all([
        login('alice', phone),
        login('alice', laptop),
        login('alice', { name: 'TV' }),
      ]);
      expect(
        (await call('POST', '/auth/logout-all', { token: String(devices[0].body.access_token) }))
          .status,
      ).toBe(204);
      const userWide = (await outbox(app))
        .filter((r) => r.key === 'alice' && r.sessionId === undefined)
        .at(-1)!;
      expect(userWide).toMatchObject({ reason: 'logout_all', initiator: 'user' });
      for (const device of devices)
        expect(
          (await call('GET', '/sessions', { token: String(device.body.access_token) })).status,
        ).toBe(401);

      const fresh = await login('alice', phone); // same millisecond on the manual clock
      expect(fresh.status).toBe(200);
      expect(decodeJwt(String(fresh.body.access_token)).iat! * 1000).toBeGreaterThan(
        userWide.eventTimestamp * 1000,
      );
      expect(
        (await call('GET', '/sessions', { token: String(fresh.body.access_token) })).status,
      ).toBe(200);

      // What an API instance will do with that event: reject the old tokens, never the new one.
      const store = new RevocationStore({ retentionMs: 305_000, now: () => app.clock.now() });
      store.apply(userWide.event);
      const identity = (answer: { body: Record<string, unknown> }) =>
        decodeJwt(String(answer.body.access_token)) as unknown as TokenIdentity;
      for (const device of devices) expect(store.check(identity(device))).toBe('user_revoked');
      expect(store.check(identity(fresh))).toBeUndefined();
    });

    it('a second logout-all within the same second still revokes the session created in between', async () => {
      await setPlan('alice', 5, 'evict_oldest');
      const first = await login('alice', phone);
      app.clock.advance(1_000 - (app.clock.now() % 1_000) + 100); // .100 into a second
      await call('POST', '/auth/logout-all', { token: String(first.body.access_token) });
      const between = await login('alice', laptop); // iat: the next second, ahead of the clock
      app.clock.advance(500); // .600 into the same second
      expect(
        (await call('POST', '/auth/logout-all', { token: String(between.body.access_token) }))
          .status,
      ).toBe(204);
      // What an API instance does: apply every event. The session created in between carries
      // the next second's iat, past this second's user-wide event: it gets an event of its own.
      const store = new RevocationStore({ retentionMs: 305_000, now: () => app.clock.now() });
      for (const record of await outbox(app)) store.apply(record.event);
      const identity = decodeJwt(String(between.body.access_token)) as unknown as TokenIdentity;
      expect(store.check(identity)).toBe('session_revoked');
      // And the session after that one is, again, never covered by it.
      const after = await login('alice', phone);
      const afterIdentity = decodeJwt(String(after.body.access_token)) as unknown as TokenIdentity;
      expect(store.check(afterIdentity)).toBeUndefined();
    });

    it('a user lists and ends only their own sessions: 404 for anyone else’s', async () => {
      const alice = await login('alice', phone);
      const bob = await login('bob', laptop);
      const list = await call('GET', '/sessions', { token: String(alice.body.access_token) });
      expect(list.status).toBe(200);
      const sessions = list.body as unknown as {
        session_id: string;
        current: boolean;
        device: object;
      }[];
      expect(sessions.find((s) => s.current)).toMatchObject({
        session_id: alice.body.session_id,
        device: phone,
      });
      expect(sessions.map((s) => s.session_id)).not.toContain(bob.body.session_id);
      const foreign = await call('DELETE', `/sessions/${String(bob.body.session_id)}`, {
        token: String(alice.body.access_token),
      });
      expect(foreign.status).toBe(404);
      expect(
        (await call('GET', '/sessions', { token: String(bob.body.access_token) })).status,
      ).toBe(200);
      const own = await call('DELETE', `/sessions/${String(alice.body.session_id)}`, {
        token: String(alice.body.access_token),
      });
      expect(own.status).toBe(204);
    });

    it('admin routes: 403 for a user; an admin lists, ends one, and logs out everyone', async () => {
      const bob = await login('bob', phone);
      const bobToken = String(bob.body.access_token);
      for (const [method, path] of [
        ['GET', '/admin/users/alice/sessions'],
        ['DELETE', '/admin/sessions/s0_xxxxxxxxxxxxxxxxxxxxxx'],
        ['POST', '/admin/users/alice/logout-all'],
        ['PUT', '/admin/users/alice/plan'],
      ] as const) {
        const answer = await call(method, path, {
          token: bobToken,
          ...(method === 'PUT' ? { body: { max_devices: 1, policy: 'reject' } } : {}),
        });
        expect({ path, status: answer.status }).toEqual({ path, status: 403 });
      }
      const admin = await adminToken();
      expect(
        (await call('DELETE', `/admin/sessions/${String(bob.body.session_id)}`, { token: admin }))
          .status,
      ).toBe(204);
      expect((await call('GET', '/sessions', { token: bobToken })).status).toBe(401);
      expect((await outbox(app)).filter((r) => r.sessionId === bob.body.session_id)).toEqual([
        expect.objectContaining({ reason: 'admin', initiator: 'admin' }),
      ]);
      // An admin's reason, in words, is the event's reason_admin.
      const carol = await login('bob', { name: 'lost phone' });
      const withReason = `/admin/sessions/${String(carol.body.session_id)}?reason=${encodeURIComponent('reported stolen')}`;
      expect((await call('DELETE', withReason, { token: admin })).status).toBe(204);
      expect((await outbox(app)).filter((r) => r.sessionId === carol.body.session_id)).toEqual([
        expect.objectContaining({ reason: 'reported stolen', initiator: 'admin' }),
      ]);
      const badReason = `/admin/users/bob/logout-all?reason=${encodeURIComponent('a\u0007b')}`;
      expect((await call('POST', badReason, { token: admin })).status).toBe(400);
      expect(
        (await call('DELETE', `/admin/sessions/${String(bob.body.session_id)}`, { token: admin }))
          .status,
      ).toBe(404);
    });
  });

  describe('forged and broken access tokens get 401', () => {
    it.each([
      ['no token', () => Promise.resolve('')],
      ['not a JWT', () => Promise.resolve('abc.def')],
      ['alg none', async () => unsigned(await realClaims())],
      ['HS256 signed with the public key', async () => hs256WithPublicKey(await realClaims())],
      ['an unknown kid', async () => signedByStranger(await realClaims())],
      ['a tampered payload', async () => tamper(await realToken())],
      [
        'an expired token',
        async () => {
          const token = await realToken();
          app.clock.advance(310_000); // past exp plus the 5 s clock tolerance
          return token;
        },
      ],
    ])('%s', async (_, make) => {
      const token = await make();
      const answer = await call('GET', '/sessions', token ? { token } : {});
      expect(answer.status).toBe(401);
      expect(answer.headers.get('www-authenticate')).toMatch(/^Bearer error="invalid_token"/);
    });

    async function realToken(): Promise<string> {
      return String((await login('alice')).body.access_token);
    }
    async function realClaims(): Promise<Record<string, unknown>> {
      return decodeJwt(await realToken());
    }
    function unsigned(claims: object): string {
      const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
      return `${part({ alg: 'none', typ: 'at+jwt' })}.${part(claims)}.`;
    }
    async function hs256WithPublicKey(claims: Record<string, unknown>): Promise<string> {
      const jwks = (await (await fetch(`${app.url}/.well-known/jwks.json`)).json()) as {
        keys: { kid: string; x: string }[];
      };
      const key = jwks.keys[0]!;
      return new SignJWT(claims)
        .setProtectedHeader({ alg: 'HS256', kid: key.kid, typ: 'at+jwt' })
        .sign(Buffer.from(JSON.stringify(key)));
    }
    async function signedByStranger(claims: Record<string, unknown>): Promise<string> {
      const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
      return new SignJWT(claims)
        .setProtectedHeader({ alg: 'EdDSA', kid: 'stranger', typ: 'at+jwt' })
        .sign(privateKey);
    }
    function tamper(token: string): string {
      const [header, payload, signature] = token.split('.');
      const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Record<
        string,
        unknown
      >;
      const changed = Buffer.from(
        JSON.stringify({ ...claims, sub: 'admin', roles: ['admin'] }),
      ).toString('base64url');
      return `${header}.${changed}.${signature}`;
    }
  });

  describe('standard endpoints', () => {
    const basic = `Basic ${Buffer.from('gateway:gateway-secret-0123456789').toString('base64')}`;

    it('publishes the JWKS and issuer metadata without authentication', async () => {
      const jwks = await call('GET', '/.well-known/jwks.json');
      expect(jwks.status).toBe(200);
      expect((jwks.body as unknown as { keys: object[] }).keys.length).toBeGreaterThan(0);
      expect(JSON.stringify(jwks.body)).not.toContain('"d"');
      const metadata = await call('GET', '/.well-known/openid-configuration');
      expect(metadata.body).toMatchObject({
        issuer: 'http://127.0.0.1:3000',
        jwks_uri: 'http://127.0.0.1:3000/.well-known/jwks.json',
      });
    });

    it('introspects (RFC 7662) and revokes (RFC 7009) for an authenticated client only', async () => {
      const { body } = await login('alice');
      const form = (token: string) => ({ body: { token }, headers: { authorization: basic } });
      expect(
        (await call('POST', '/oauth/introspect', { body: { token: body.access_token } })).status,
      ).toBe(401);
      const active = await call('POST', '/oauth/introspect', form(String(body.access_token)));
      expect(active.body).toMatchObject({
        active: true,
        sub: 'alice',
        sid: body.session_id,
        client_id: 'gateway',
      });
      expect((await call('POST', '/oauth/revoke', form(String(body.refresh_token)))).status).toBe(
        200,
      );
      expect(
        (await call('POST', '/oauth/introspect', form(String(body.access_token)))).body,
      ).toEqual({ active: false });
      expect((await call('POST', '/oauth/revoke', form('unknown-token'))).status).toBe(200);
    });

    it('serves its OpenAPI description at /docs, request bodies from the validation schemas', async () => {
      const page = await fetch(`${app.url}/docs`);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toContain('text/html');
      const document = (await (await fetch(`${app.url}/docs-json`)).json()) as {
        paths: Record<
          string,
          Record<
            string,
            { requestBody?: { content: Record<string, { schema: { required?: string[] } }> } }
          >
        >;
      };
      expect(Object.keys(document.paths)).toEqual(
        expect.arrayContaining([
          '/auth/login',
          '/auth/refresh',
          '/sessions',
          '/admin/users/{userId}/plan',
        ]),
      );
      expect(
        document.paths['/auth/login']?.post?.requestBody?.content['application/json']?.schema
          .required,
      ).toEqual(['username', 'password', 'device']);
    });

    it('answers health and metrics without a token', async () => {
      expect((await call('GET', '/health/ready')).status).toBe(200);
      const metrics = await fetch(`${app.url}/metrics`);
      expect(await metrics.text()).toMatch(
        /^session_sign_ins_total\{[^}]*method="password"[^}]*\} \d+/m,
      );
    });
  });

  it('invariant: no session ends without its outbox entry', async () => {
    // Every session handed out above is still live, or ended with exactly one event of its own,
    // or was ended by a user-wide event ("log out everywhere") of its user.
    const events = await outbox(app);
    const perSession = new Map<string, number>();
    for (const e of events)
      if (e.sessionId) perSession.set(e.sessionId, (perSession.get(e.sessionId) ?? 0) + 1);
    const userWide = new Set(events.filter((e) => e.sessionId === undefined).map((e) => e.key));
    const admin = await adminToken();
    const live = new Set<string>();
    for (const user of ['alice', 'bob', 'admin']) {
      const sessions = (await call('GET', `/admin/users/${user}/sessions`, { token: admin }))
        .body as unknown as { session_id: string }[];
      for (const session of sessions) live.add(session.session_id);
    }
    expect(issued.length).toBeGreaterThan(50);
    for (const { sessionId, user } of issued) {
      const accounted =
        live.has(sessionId) ||
        perSession.get(sessionId) === 1 ||
        (!perSession.has(sessionId) && userWide.has(user));
      expect({ sessionId, accounted }).toEqual({ sessionId, accounted: true });
      if (live.has(sessionId)) expect(perSession.has(sessionId)).toBe(false);
    }
  });
});
