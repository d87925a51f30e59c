// Two gateway instances in front of two content-api instances (processes, on the run's Kafka
// and Redis): a session ended anywhere is refused by every gateway instance, each from its
// own revocation view, and by every API instance (invariant 8 of DESIGN.md); an opaque
// token's cached JWT does not outlive its session at either gateway; and the proxy's passive
// health keeps every request answered when an API instance dies.
import { eventually } from '@app/testing';
import type { Redis } from 'ioredis';
import type { AppHandle, RunningSystem } from '../../../scripts/system.ts';
import {
  browserLogin,
  call,
  entryKey,
  metric,
  ORIGIN,
  phoneLogin,
  type Answer,
} from './gateway-calls';
import { startGatewayFixture, type GatewayFixture } from './gateway-fixture';

let fixture: GatewayFixture;
let system: RunningSystem;
let gateways: AppHandle[];
let sessionUrl: string;
let redis: Redis;
let prefix: string;

beforeAll(async () => {
  fixture = await startGatewayFixture({
    name: 'gateway-instances',
    gateways: 2,
    contentInstances: 2,
    // Long enough that no test here outlasts it: a dead instance is skipped, never retried.
    // Reuse of a rotated refresh token is theft at once, with no grace for a racing client.
    sessionEnv: { REFRESH_REUSE_GRACE_SECONDS: '0' },
    gatewayEnv: { GATEWAY_ALLOWED_ORIGINS: ORIGIN, GATEWAY_UPSTREAM_COOLOFF_MS: '300000' },
  });
  ({ system, gateways, sessionUrl, redis, gatewayPrefix: prefix } = fixture);
}, 180_000);

afterAll(async () => {
  await fixture.stop();
});

const contentApis = () => system.instances('content-api');

/** A cookie session made at the first gateway, and its Redis entry as stored now. */
async function cookieSession(username: string, device: string) {
  const { handle, sessionId } = await browserLogin(gateways[0]!.url, username, device);
  const entry = (await redis.get(entryKey(prefix, handle))) ?? '';
  const { access_token, refresh_token } = JSON.parse(entry) as Record<string, string>;
  for (const gateway of gateways)
    expect((await call(gateway.url, 'GET', '/api/content/me', { cookie: handle })).status).toBe(
      200,
    );
  return { handle, sessionId, entry, access_token: access_token!, refresh_token: refresh_token! };
}

/**
 * The cookie session is refused at every gateway instance by that instance's own view: one
 * gateway's refusal deletes the shared Redis entry, so the entry is put back before asking
 * the next, and the refusal must say the session was revoked, not that it is unknown. Its
 * access JWT is refused by every content-api instance.
 */
async function refusedEverywhere(session: { handle: string; entry: string; access_token: string }) {
  const key = entryKey(prefix, session.handle);
  for (const gateway of gateways) {
    const refused = await eventually(`${gateway.label} to refuse the cookie`, async () => {
      await redis.set(key, session.entry, 'PX', 60_000);
      // The recorder answers 200 to anything: a 401 on its route can only be the gateway's.
      const answer = await call(gateway.url, 'GET', '/api/recorder/x', { cookie: session.handle });
      return answer.status === 401 ? answer : undefined;
    });
    expect(refused.json).toMatchObject({
      error: 'invalid_token',
      error_description: expect.stringMatching(/revoked/) as unknown,
    });
    expect(refused.headers.getSetCookie().join()).toContain('Max-Age=0');
  }
  for (const api of contentApis())
    await eventually(`${api.label} to refuse the session's access JWT`, async () => {
      const answer = await call(api.url, 'GET', '/me', { bearer: session.access_token });
      return answer.status === 401 ? answer : undefined;
    });
}

async function asAdmin(method: string, path: string, body?: unknown): Promise<Answer> {
  const { access_token } = await phoneLogin(sessionUrl, 'admin', `admin-${path}`);
  return call(sessionUrl, method, path, { bearer: access_token, body });
}

describe('two gateways, two content-api instances', () => {
  it('refuses an opaque token at every gateway once its session ends, though its JWT is still cached there', async () => {
    const { access_token: opaque } = await phoneLogin(sessionUrl, 'alice', 'opaque', 'opaque');
    for (const gateway of gateways) {
      expect((await call(gateway.url, 'GET', '/api/content/me', { bearer: opaque })).status).toBe(
        200,
      );
      expect((await call(gateway.url, 'GET', '/api/content/me', { bearer: opaque })).status).toBe(
        200,
      );
    }
    const exchanges = await Promise.all(
      gateways.map((gateway) => metric(gateway.url, 'gateway_introspections_total')),
    );
    expect(exchanges).toEqual([1, 1]); // one each, the second request came from each cache

    expect((await call(sessionUrl, 'POST', '/auth/logout', { bearer: opaque })).status).toBe(204);
    for (const [i, gateway] of gateways.entries()) {
      const refused = await eventually(`${gateway.label} to refuse the opaque token`, async () => {
        const answer = await call(gateway.url, 'GET', '/api/recorder/x', { bearer: opaque });
        return answer.status === 401 ? answer : undefined;
      });
      expect(refused.json).toMatchObject({ error: 'invalid_token' });
      // From its own revocation view, its cached JWT notwithstanding: no introspection said so.
      expect(await metric(gateway.url, 'gateway_introspections_total')).toBe(exchanges[i]);
    }
  }, 60_000);

  it('an admin ending the cookie session: 401 at every gateway and API instance', async () => {
    const session = await cookieSession('alice', 'browser-admin');
    const ended = await asAdmin('DELETE', `/admin/sessions/${session.sessionId}`);
    expect(ended.status).toBe(204);
    await refusedEverywhere(session);
  }, 60_000);

  it('reuse of a rotated-away refresh token: 401 at every gateway and API instance', async () => {
    const session = await cookieSession('alice', 'browser-reuse');
    const rotate = () =>
      call(sessionUrl, 'POST', '/auth/refresh', { body: { refresh_token: session.refresh_token } });
    expect((await rotate()).status).toBe(200);
    // The same refresh token again: reuse detection ends the session's whole family.
    expect((await rotate()).status).toBe(401);
    await refusedEverywhere(session);
  }, 60_000);

  it('device-limit eviction by a newer sign-in: 401 at every gateway and API instance', async () => {
    const session = await cookieSession('bob', 'browser-evicted');
    const plan = await asAdmin('PUT', '/admin/users/bob/plan', {
      max_devices: 1,
      policy: 'evict_oldest',
    });
    expect(plan.status).toBe(200);
    await phoneLogin(sessionUrl, 'bob', 'phone-evicting');
    await refusedEverywhere(session);
  }, 60_000);

  it('logout-all from a phone (bearer JWT): the browser’s cookie and the phone get 401 at every gateway and API instance', async () => {
    const session = await cookieSession('alice', 'browser-everywhere');
    const phone = await phoneLogin(sessionUrl, 'alice', 'phone');
    for (const gateway of gateways)
      expect(
        (await call(gateway.url, 'GET', '/api/content/me', { bearer: phone.access_token })).status,
      ).toBe(200);
    expect(
      (await call(sessionUrl, 'POST', '/auth/logout-all', { bearer: phone.access_token })).status,
    ).toBe(204);
    await refusedEverywhere(session);
    for (const gateway of gateways)
      await eventually(`${gateway.label} to refuse the phone's JWT`, async () => {
        const answer = await call(gateway.url, 'GET', '/api/recorder/x', {
          bearer: phone.access_token,
        });
        return answer.status === 401 ? answer : undefined;
      });
  }, 60_000);

  it('a content-api instance killed: every request still 200, the dead one skipped, not retried each time; none left: 502, a GET having tried both, a POST one', async () => {
    const { access_token } = await phoneLogin(sessionUrl, 'admin', 'health');
    const me = (gateway: AppHandle) =>
      call(gateway.url, 'GET', '/api/content/me', { bearer: access_token });
    const failures = (gateway: AppHandle) =>
      metric(gateway.url, 'gateway_upstream_failures_total', 'service="content"');
    for (const gateway of gateways) {
      for (let i = 0; i < 4; i += 1) expect((await me(gateway)).status).toBe(200);
      expect(await failures(gateway)).toBe(0);
    }
    const [dead, alive] = contentApis();
    await system.stopApp(dead!, { crash: true }); // SIGKILL

    for (const gateway of gateways) {
      const statuses: number[] = [];
      for (let i = 0; i < 20; i += 1) statuses.push((await me(gateway)).status);
      expect(statuses).toEqual(Array(20).fill(200));
      // Tried once, found dead, then skipped for the cool-off: not once per request.
      expect(await failures(gateway)).toBe(1);
      const burst = await Promise.all(Array.from({ length: 20 }, () => me(gateway)));
      expect(burst.map((answer) => answer.status)).toEqual(Array(20).fill(200));
      expect(await failures(gateway)).toBe(1);
    }

    await system.stopApp(alive!, { crash: true });
    for (const gateway of gateways) {
      // A GET tries every instance (the last one standing, then the one in its cool-off)…
      const answer = await me(gateway);
      expect(answer.status).toBe(502);
      expect(answer.json).toMatchObject({ error: 'bad_gateway' });
      expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await failures(gateway)).toBe(3);
      // …a POST only one: it is never sent again.
      const post = await call(gateway.url, 'POST', '/api/content/me', {
        bearer: access_token,
        body: { n: 1 },
      });
      expect(post.status).toBe(502);
      expect(await failures(gateway)).toBe(4);
    }
  }, 90_000);
});
