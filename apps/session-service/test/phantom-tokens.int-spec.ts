import { createHash } from 'node:crypto';
import { startOidcIssuer, type TestOidcIssuer } from '@app/testing';
import { createLocalJWKSet, decodeJwt, jwtVerify, type JSONWebKeySet } from 'jose';
import { client, startSessionApp, type SessionApp } from './session-app';

// Phantom tokens (DESIGN.md, "Web clients, the gateway and federation"): a sign-in with
// `token_format: "opaque"` answers an opaque `at_` token instead of the access JWT; an
// authenticated client (the gateway) exchanges it for the JWT at `POST /oauth/introspect` with
// `Accept: application/jwt` while its session lives, and gets `{active:false}` once it ended,
// however it ended. Redis holds only the token's hash.

const CLIENT = { client_id: 'gateway', client_secret: 'gateway-secret-0123456789' };
const OPAQUE = /^at_[A-Za-z0-9_-]{43}\.\d{1,5}$/;
const TTL_SECONDS = 300;

describe('phantom tokens: opaque access tokens and their introspection (real Redis)', () => {
  let app: SessionApp;
  let issuer: TestOidcIssuer;
  let call: ReturnType<typeof client>;
  let admin: string;

  beforeAll(async () => {
    issuer = await startOidcIssuer();
    app = await startSessionApp({
      OAUTH_CLIENTS: JSON.stringify([CLIENT]),
      DEFAULT_MAX_DEVICES: '100',
      ACCESS_TOKEN_TTL_SECONDS: String(TTL_SECONDS),
      OIDC_ISSUERS: JSON.stringify([
        { issuer: issuer.issuer, jwks_uri: issuer.jwksUri, audience: issuer.audience },
      ]),
    });
    call = client(app);
    admin = String((await login('admin', 'jwt')).access_token);
  });

  afterAll(async () => {
    await app.close();
    await issuer.stop();
  });

  async function login(username: string, tokenFormat?: 'jwt' | 'opaque', device = 'phone') {
    const answer = await call('POST', '/auth/login', {
      body: {
        username,
        password: `${username}-pass`,
        device: { name: device },
        ...(tokenFormat ? { token_format: tokenFormat } : {}),
      },
    });
    expect(answer.status).toBe(200);
    return answer.body;
  }

  /** POST /oauth/introspect, form-encoded with client_secret_post; the answer as text. */
  async function introspect(token: string, accept?: string) {
    const response = await fetch(`${app.url}/oauth/introspect`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        ...(accept ? { accept } : {}),
      },
      body: new URLSearchParams({ token, ...CLIENT }).toString(),
    });
    return {
      status: response.status,
      type: response.headers.get('content-type') ?? '',
      cacheControl: response.headers.get('cache-control'),
      text: await response.text(),
    };
  }

  /** The JWT an opaque token stands for, as the gateway gets it. */
  async function exchange(token: string): Promise<string> {
    const answer = await introspect(token, 'application/jwt');
    expect({ status: answer.status, type: answer.type }).toEqual({
      status: 200,
      type: 'application/jwt',
    });
    return answer.text;
  }

  async function expectInactive(token: string) {
    for (const accept of ['application/jwt', undefined]) {
      const answer = await introspect(token, accept);
      expect(answer.status).toBe(200);
      expect(answer.type).toMatch(/^application\/json/);
      expect(JSON.parse(answer.text)).toEqual({ active: false });
    }
  }

  /** Every key under the app's prefix, with its value as text (whatever its type). */
  async function dump(): Promise<Map<string, string>> {
    const all = new Map<string, string>();
    for (const key of await app.redis.keys(`${app.prefix}*`)) {
      all.set(key, JSON.stringify(await valueOf(key)));
    }
    return all;
  }

  async function valueOf(key: string): Promise<unknown> {
    const type = await app.redis.type(key);
    switch (type) {
      case 'string':
        return app.redis.get(key);
      case 'hash':
        return app.redis.hgetall(key);
      case 'zset':
        return app.redis.zrange(key, '0', '-1', 'WITHSCORES');
      case 'set':
        return app.redis.smembers(key);
      case 'list':
        return app.redis.lrange(key, 0, -1);
      case 'stream':
        return app.redis.xrange(key, '-', '+');
      default:
        return type;
    }
  }

  const opaqueKeys = async () => app.redis.keys(`${app.prefix}{o*}:at:*`);
  const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');

  it('a password sign-in with token_format "opaque" answers an at_ token, not a JWT; Redis holds only its hash', async () => {
    const answer = await login('alice', 'opaque');
    const token = String(answer.access_token);
    expect(token).toMatch(OPAQUE);
    expect(() => decodeJwt(token)).toThrow();
    expect(answer).toEqual({
      access_token: token,
      token_type: 'Bearer',
      expires_in: TTL_SECONDS,
      refresh_token: expect.stringMatching(/^rt\d+_/) as unknown,
      session_id: expect.stringMatching(/^s\d+_/) as unknown,
    });
    const secret = token.slice(3, 46);
    for (const [key, value] of await dump()) {
      expect({ key, plain: key.includes(secret) || value.includes(secret) }).toEqual({
        key,
        plain: false,
      });
    }
    // Its key: the hash of the token, in the session's shard, with the JWT, expiring with it.
    const shard = token.split('.').at(-1) ?? '';
    const key = `${app.prefix}{o${shard}}:at:${sha256(token)}`;
    expect(await app.redis.hget(key, 'sid')).toBe(answer.session_id);
    const ttl = await app.redis.pttl(key);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(TTL_SECONDS * 1000 + 5_000);
    expect(String(answer.session_id).startsWith(`s${shard}_`)).toBe(true);
  });

  it('an OIDC sign-in with token_format "opaque" answers an at_ token too', async () => {
    const idToken = await issuer.sign({ sub: 'ext-phantom' });
    const answer = await call('POST', '/auth/oidc', {
      body: { id_token: idToken, device: { name: 'tablet' }, token_format: 'opaque' },
    });
    expect(answer.status).toBe(200);
    expect(String(answer.body.access_token)).toMatch(OPAQUE);
    const claims = decodeJwt(await exchange(String(answer.body.access_token)));
    expect(claims).toMatchObject({ sid: answer.body.session_id });
    expect(String(claims.sub)).toMatch(/^oidc-/);
  });

  it('token_format is validated like the other fields; the default is the JWT', async () => {
    for (const [path, extra] of [
      ['/auth/login', { username: 'alice', password: 'alice-pass' }],
      ['/auth/oidc', { id_token: 'x.y.z' }],
    ] as const) {
      const refused = await call('POST', path, {
        body: { ...extra, device: { name: 'phone' }, token_format: 'paseto' },
      });
      expect(refused.status).toBe(400);
      expect(refused.body).toMatchObject({
        error: 'invalid_request',
        fields: [{ field: 'token_format' }],
      });
    }
    const plain = await login('alice');
    expect(decodeJwt(String(plain.access_token))).toMatchObject({ sub: 'alice' });
  });

  it('introspection with Accept: application/jwt answers the access JWT, whose claims match the session', async () => {
    const answer = await login('bob', 'opaque');
    const token = String(answer.access_token);
    const introspected = await introspect(token, 'application/jwt');
    expect(introspected).toMatchObject({
      status: 200,
      type: 'application/jwt',
      cacheControl: 'no-store',
    });
    const jwks = (await call('GET', '/.well-known/jwks.json')).body as unknown as JSONWebKeySet;
    const { payload, protectedHeader } = await jwtVerify(
      introspected.text,
      createLocalJWKSet(jwks),
      { currentDate: new Date(app.clock.now()) },
    );
    expect(protectedHeader.typ).toBe('at+jwt');
    expect(payload).toMatchObject({ sub: 'bob', sid: answer.session_id, roles: ['user'] });
    expect(payload.exp).toBe(Math.floor(app.clock.now() / 1000) + TTL_SECONDS);
    // Among other types too, and the same JWT every time while it lives.
    expect((await introspect(token, 'application/json;q=0.5, application/jwt')).text).toBe(
      introspected.text,
    );
    // Without asking for the JWT: RFC 7662's JSON, as for the JWT itself.
    for (const accept of [undefined, 'application/json', 'application/jwt;q=0']) {
      const json = await introspect(token, accept);
      expect(json.type).toMatch(/^application\/json/);
      expect(JSON.parse(json.text)).toMatchObject({
        active: true,
        token_type: 'Bearer',
        client_id: CLIENT.client_id,
        sub: 'bob',
        sid: answer.session_id,
        exp: payload.exp,
        jti: payload.jti,
      });
    }
    // A JWT is never answered as application/jwt: the caller has it already.
    const ofJwt = await introspect(introspected.text, 'application/jwt');
    expect(ofJwt.type).toMatch(/^application\/json/);
    expect(JSON.parse(ofJwt.text)).toMatchObject({ active: true, sid: answer.session_id });
    // Client authentication still required.
    const anonymous = await fetch(`${app.url}/oauth/introspect`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/jwt' },
      body: new URLSearchParams({ token }).toString(),
    });
    expect(anonymous.status).toBe(401);
    // Unknown, forged or malformed opaque tokens are inactive.
    await expectInactive(`at_${'A'.repeat(43)}.0`);
    await expectInactive(`${token}0`);
    await expectInactive('at_');
  });

  it('the session service takes the opaque token as Bearer on its own routes', async () => {
    const answer = await login('alice', 'opaque', 'watch');
    const sessions = await call('GET', '/sessions', { token: String(answer.access_token) });
    expect(sessions.status).toBe(200);
    const listed = sessions.body as unknown as { session_id: string; current: boolean }[];
    expect(listed.find((session) => session.current)?.session_id).toBe(answer.session_id);
  });

  it('after logout, logout-all, an admin end, a device-limit eviction, refresh-token reuse or RFC 7009 revocation, introspection answers {active:false}', async () => {
    // logout, with the opaque token as Bearer
    const loggedOut = await login('alice', 'opaque');
    await exchange(String(loggedOut.access_token));
    const logout = await call('POST', '/auth/logout', { token: String(loggedOut.access_token) });
    expect(logout.status).toBe(204);
    await expectInactive(String(loggedOut.access_token));
    expect(
      (await call('POST', '/auth/logout', { token: String(loggedOut.access_token) })).status,
    ).toBe(401);

    // logout-all: every opaque session of the user
    const all = [await login('alice', 'opaque'), await login('alice', 'opaque', 'laptop')];
    for (const session of all) await exchange(String(session.access_token));
    const everywhere = await call('POST', '/auth/logout-all', {
      token: String(all[0]!.access_token),
    });
    expect(everywhere.status).toBe(204);
    for (const session of all) await expectInactive(String(session.access_token));

    // an admin ends the session
    const byAdmin = await login('bob', 'opaque');
    const ended = await call('DELETE', `/admin/sessions/${String(byAdmin.session_id)}`, {
      token: admin,
    });
    expect(ended.status).toBe(204);
    await expectInactive(String(byAdmin.access_token));

    // the device limit evicts the oldest
    const plan = await call('PUT', '/admin/users/bob/plan', {
      token: admin,
      body: { max_devices: 1, policy: 'evict_oldest' },
    });
    expect(plan.status).toBe(200);
    try {
      const oldest = await login('bob', 'opaque', 'old phone');
      app.clock.advance(10);
      const newest = await login('bob', 'opaque', 'new phone');
      await expectInactive(String(oldest.access_token));
      await exchange(String(newest.access_token));

      // a rotated refresh token presented again (past the grace window) ends the session
      const rotated = await call('POST', '/auth/refresh', {
        body: { refresh_token: newest.refresh_token },
      });
      expect(rotated.status).toBe(200);
      app.clock.advance(6_000);
      const reuse = await call('POST', '/auth/refresh', {
        body: { refresh_token: newest.refresh_token },
      });
      expect(reuse.status).toBe(401);
      await expectInactive(String(newest.access_token));
      await expectInactive(String(rotated.body.access_token));
    } finally {
      await call('PUT', '/admin/users/bob/plan', {
        token: admin,
        body: { max_devices: 100, policy: 'evict_oldest' },
      });
    }

    // RFC 7009 revocation of the opaque token ends its session
    const revoked = await login('bob', 'opaque');
    const revocation = await fetch(`${app.url}/oauth/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: String(revoked.access_token), ...CLIENT }).toString(),
    });
    expect(revocation.status).toBe(200);
    await expectInactive(String(revoked.access_token));
    expect(
      (await call('POST', '/auth/refresh', { body: { refresh_token: revoked.refresh_token } }))
        .status,
    ).toBe(401);

    // Ending a session deleted its opaque tokens' keys with it.
    const sessions = await Promise.all(
      (await opaqueKeys()).map((key) => app.redis.hget(key, 'sid')),
    );
    for (const gone of [loggedOut, ...all, byAdmin, revoked])
      expect(sessions).not.toContain(gone.session_id);
  });

  it('a refresh of an opaque session answers a new opaque token; the old one lives until its own JWT expires', async () => {
    const first = await login('alice', 'opaque', 'reader');
    const firstJwt = decodeJwt(await exchange(String(first.access_token)));
    app.clock.advance(60_000);
    const refreshed = await call('POST', '/auth/refresh', {
      body: { refresh_token: first.refresh_token },
    });
    expect(refreshed.status).toBe(200);
    const next = String(refreshed.body.access_token);
    expect(next).toMatch(OPAQUE);
    expect(next).not.toBe(first.access_token);
    expect(refreshed.body).toMatchObject({
      token_type: 'Bearer',
      expires_in: TTL_SECONDS,
      session_id: first.session_id,
    });
    const nextJwt = decodeJwt(await exchange(next));
    expect(nextJwt).toMatchObject({ sub: 'alice', sid: first.session_id });
    expect(nextJwt.iat).toBe(Math.floor(app.clock.now() / 1000));
    expect(nextJwt.jti).not.toBe(firstJwt.jti);
    // The old token is not revoked by the rotation (nor is the old JWT): until its exp.
    expect(decodeJwt(await exchange(String(first.access_token)))).toEqual(firstJwt);
    app.clock.advance((firstJwt.exp! - Math.floor(app.clock.now() / 1000)) * 1000);
    await expectInactive(String(first.access_token));
    expect(decodeJwt(await exchange(next))).toEqual(nextJwt);
    app.clock.advance(TTL_SECONDS * 1000);
    await expectInactive(next);
    // The session itself lives on: a refresh gives a working opaque token again.
    const again = await call('POST', '/auth/refresh', {
      body: { refresh_token: refreshed.body.refresh_token },
    });
    expect(again.status).toBe(200);
    expect(decodeJwt(await exchange(String(again.body.access_token)))).toMatchObject({
      sid: first.session_id,
    });
  });

  it('the OpenAPI document describes token_format and the application/jwt answer', async () => {
    interface Operation {
      requestBody?: {
        content: Record<string, { schema: { properties?: Record<string, { enum?: string[] }> } }>;
      };
      responses?: Record<string, { content?: Record<string, unknown> }>;
    }
    const document = (await (await fetch(`${app.url}/docs-json`)).json()) as {
      paths: Record<string, Record<string, Operation | undefined> | undefined>;
    };
    for (const path of ['/auth/login', '/auth/oidc']) {
      const body = document.paths[path]?.post?.requestBody?.content['application/json'];
      expect({ path, formats: body?.schema.properties?.token_format?.enum }).toEqual({
        path,
        formats: ['jwt', 'opaque'],
      });
    }
    const introspection = document.paths['/oauth/introspect']?.post?.responses?.['200'];
    expect(Object.keys(introspection?.content ?? {})).toEqual([
      'application/json',
      'application/jwt',
    ]);
  });

  it('a JWT-format session is unchanged: its refresh answers a JWT', async () => {
    const first = await login('bob', 'jwt');
    expect(decodeJwt(String(first.access_token))).toMatchObject({ sid: first.session_id });
    const refreshed = await call('POST', '/auth/refresh', {
      body: { refresh_token: first.refresh_token },
    });
    expect(decodeJwt(String(refreshed.body.access_token))).toMatchObject({
      sid: first.session_id,
    });
    const withOpaque = await Promise.all(
      (await opaqueKeys()).map((key) => app.redis.hget(key, 'sid')),
    );
    expect(withOpaque).not.toContain(first.session_id);
  });
});
