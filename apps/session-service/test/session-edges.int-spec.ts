import { join } from 'node:path';
import { eventually, startOidcIssuer, uniqueName, type TestOidcIssuer } from '@app/testing';
import { decodeJwt } from 'jose';
import { startRedis, type RedisHandle } from '../../../scripts/redis/redis.ts';
import { client, startSessionApp, type SessionApp } from './session-app';

// Sign-in with an ID token from a (local) OpenID Connect issuer, rate limits, and a Redis
// outage: 503 within seconds, recovery without a restart. Own Redis, so it can be killed.

describe('session service: OIDC, rate limits, Redis outage', () => {
  let redis: RedisHandle;
  let issuer: TestOidcIssuer;
  let app: SessionApp;
  let call: ReturnType<typeof client>;
  const device = { name: 'Phone' };

  beforeAll(async () => {
    redis = await startRedis({
      dataDir: join(process.env.TEST_DATA_DIR ?? '/tmp', uniqueName('redis')),
    });
    issuer = await startOidcIssuer();
    app = await startSessionApp({
      REDIS_URL: redis.url,
      RATE_LIMIT_PER_IP: '1000',
      RATE_LIMIT_CONSECUTIVE_FAILS: '3',
      RATE_LIMIT_WINDOW_SECONDS: '60',
      OIDC_ISSUERS: JSON.stringify([
        {
          issuer: issuer.issuer,
          jwks_uri: issuer.jwksUri,
          audience: issuer.audience,
          roles_claim: 'groups',
          admin_role: 'ops',
        },
      ]),
    });
    call = client(app);
  });

  afterAll(async () => {
    await app.close();
    await issuer.stop();
    await redis.stop();
  });

  it('signs in with a valid ID token and maps the issuer’s admin group to the admin role', async () => {
    const idToken = await issuer.sign({
      sub: 'ext-42',
      groups: ['ops'],
      preferred_username: 'dana',
    });
    const { status, body } = await call('POST', '/auth/oidc', {
      body: { id_token: idToken, device },
    });
    expect(status).toBe(200);
    const claims = decodeJwt(String(body.access_token));
    expect(claims.sub).toMatch(/^oidc-/);
    expect(claims.roles).toEqual(['user', 'admin']);
    expect(
      (
        await call('GET', `/admin/users/${claims.sub!}/sessions`, {
          token: String(body.access_token),
        })
      ).status,
    ).toBe(200);
  });

  // Every row has the same arity: Jest takes an extra declared parameter for a `done` callback.
  it.each([
    ['an expired ID token', () => issuer.sign({ sub: 'x' }, { expiresIn: -60 }), undefined],
    ['a nonce mismatch', () => issuer.sign({ sub: 'x' }, { nonce: 'abc' }), 'other'],
    ['a wrong audience', () => issuer.sign({ sub: 'x', aud: 'someone-else' }), undefined],
  ])('refuses %s with 401 invalid_id_token', async (_, make, nonce) => {
    const { status, body } = await call('POST', '/auth/oidc', {
      body: { id_token: await make(), device, ...(nonce ? { nonce } : {}) },
    });
    expect(status).toBe(401);
    expect(body.error).toBe('invalid_id_token');
  });

  it('limits failed sign-ins per username and address: 429 with Retry-After', async () => {
    const attempt = () =>
      call('POST', '/auth/login', { body: { username: 'bob', password: 'wrong', device } });
    const statuses = [];
    for (let i = 0; i < 4; i += 1) statuses.push((await attempt()).status);
    expect(statuses).toEqual([401, 401, 401, 429]);
    const limited = await attempt();
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('answers 503 at once while Redis is down, and recovers by itself', async () => {
    const idToken = await issuer.sign({ sub: 'ext-7' });
    const { body } = await call('POST', '/auth/oidc', { body: { id_token: idToken, device } });
    const token = String(body.access_token);
    // The provider's back-channel logout of that user (issue 14), sent while Redis is down.
    const logoutToken = await issuer.signLogoutToken({ sub: 'ext-7' });
    const backchannelLogout = () =>
      call('POST', '/oidc/backchannel-logout', {
        body: new URLSearchParams({ logout_token: logoutToken }).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
    await redis.kill();

    const down = await Promise.all([
      call('GET', '/sessions', { token }),
      call('POST', '/auth/refresh', { body: { refresh_token: body.refresh_token } }),
      call('GET', '/health/ready'),
      backchannelLogout(),
    ]);
    expect(down.map((r) => r.status)).toEqual([503, 503, 503, 503]);
    expect(down[0].headers.get('retry-after')).toBe('1');
    expect((await call('GET', '/health/live')).status).toBe(200);

    await redis.restart();
    const sessions = await eventually('the service to use Redis again', async () => {
      const answer = await call('GET', '/sessions', { token });
      return answer.status === 200 ? answer : undefined;
    });
    expect(sessions.body).toHaveLength(1); // AOF with appendfsync always: nothing lost
    // The provider retries the logout that got 503: the same token is accepted now (its jti
    // is remembered only once the sessions have ended), and the session ends.
    expect((await backchannelLogout()).status).toBe(200);
    expect((await call('GET', '/sessions', { token })).status).toBe(401);
  });
});
