// The phantom-token flow at the gateway, as processes on the run's Kafka and Redis: an opaque
// `at_` token is exchanged at the session service's /oauth/introspect (Accept: application/jwt)
// for its JWT, which alone goes upstream; the exchange is cached; and a revocation wins over
// the cache and over an introspection in flight (invariant 8 of DESIGN.md, CVE-2026-3583).
import { eventually } from '@app/testing';
import type { IncomingHttpHeaders } from 'node:http';
import type { AppHandle } from '../../../scripts/system.ts';
import { startGatewayFixture, type GatewayFixture } from './gateway-fixture';

const CLIENT = { client_id: 'gateway', client_secret: 'gateway-secret-0123456789' };
/** Every introspection answer is held this long at the gateway (the test-only hook). */
const HOLD_MS = 1_500;

let fixture: GatewayFixture;
let gateway: AppHandle;
let sessionUrl: string;
let received: { url: string; headers: IncomingHttpHeaders }[];

async function viaGateway(path: string, token: string) {
  const response = await fetch(`${gateway.url}${path}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  return { status: response.status, text: await response.text(), headers: response.headers };
}

async function signIn(device: string, tokenFormat: 'jwt' | 'opaque') {
  const response = await fetch(`${sessionUrl}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      username: 'alice',
      password: 'alice-pass',
      device: { name: device },
      token_format: tokenFormat,
    }),
  });
  expect(response.status).toBe(200);
  return (await response.json()) as { access_token: string; session_id: string };
}

async function endSession(path: '/auth/logout' | '/auth/logout-all', token: string) {
  const response = await fetch(`${sessionUrl}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
  });
  expect(response.status).toBe(204);
}

/** The gateway's introspections so far, by outcome, from its /metrics. */
async function introspections(outcome: 'active' | 'inactive' | 'error'): Promise<number> {
  const text = await (await fetch(`${gateway.url}/metrics`)).text();
  return text
    .split('\n')
    .filter(
      (line) =>
        line.startsWith('gateway_introspections_total{') && line.includes(`outcome="${outcome}"`),
    )
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

const all = async () =>
  (await introspections('active')) +
  (await introspections('inactive')) +
  (await introspections('error'));

beforeAll(async () => {
  fixture = await startGatewayFixture({
    name: 'gateway-phantom',
    sessionEnv: { OAUTH_CLIENTS: JSON.stringify([CLIENT]) },
    gatewayEnv: {
      NODE_ENV: 'test',
      GATEWAY_CLIENT_ID: CLIENT.client_id,
      GATEWAY_CLIENT_SECRET: CLIENT.client_secret,
      GATEWAY_TEST_HOLD_INTROSPECTION_MS: String(HOLD_MS),
    },
  });
  ({ gateway, sessionUrl, received } = fixture);
});

afterAll(async () => {
  await fixture.stop();
});

describe('gateway: phantom tokens (opaque bearer → JWT upstream)', () => {
  it('exchanges an opaque token once: the upstream gets the JWT, a second request comes from cache', async () => {
    const { access_token: opaque, session_id } = await signIn('opaque-works', 'opaque');
    expect(opaque).toMatch(/^at_/);
    const before = await all();
    // No cookie, so no x-csrf: a bearer token is no ambient credential.
    const me = await viaGateway('/api/content/me', opaque);
    expect(me.status).toBe(200);
    expect(JSON.parse(me.text)).toMatchObject({ sub: 'alice', session_id });
    expect(await introspections('active')).toBeGreaterThanOrEqual(1);
    expect((await all()) - before).toBe(1);

    const seenBefore = received.length;
    const recorded = await viaGateway('/api/recorder/orders?x=1', opaque);
    expect(recorded.status).toBe(200);
    expect((await all()) - before).toBe(1); // served from the cache
    expect(received.length).toBe(seenBefore + 1);
    const [seen] = received.slice(-1);
    expect(seen?.url).toBe('/orders?x=1');
    expect(seen?.headers.authorization).toMatch(/^Bearer ey[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(JSON.stringify(seen?.headers)).not.toContain(opaque);

    // Concurrent requests for a fresh token share one introspection.
    const { access_token: fresh } = await signIn('opaque-concurrent', 'opaque');
    const start = await all();
    const answers = await Promise.all(
      Array.from({ length: 10 }, () => viaGateway('/api/content/me', fresh)),
    );
    expect(answers.map((answer) => answer.status)).toEqual(Array(10).fill(200));
    expect((await all()) - start).toBe(1);
  }, 30_000);

  it.each([
    ['logout of that session', '/auth/logout' as const],
    ['logout-all from another device', '/auth/logout-all' as const],
  ])(
    'refuses a cached opaque token after %s, and evicts it',
    async (_name, path) => {
      const { access_token: opaque } = await signIn(`opaque-${path}`, 'opaque');
      expect((await viaGateway('/api/content/me', opaque)).status).toBe(200);
      const start = await all();
      expect((await viaGateway('/api/content/me', opaque)).status).toBe(200);
      expect(await all()).toBe(start); // cached

      const ender = path === '/auth/logout' ? opaque : (await signIn('phone', 'jwt')).access_token;
      await endSession(path, ender);
      // The recorder answers 200 to anything: a 401 on its route can only be the gateway's.
      const refused = await eventually(
        'the gateway to refuse the cached opaque token',
        async () => {
          const answer = await viaGateway('/api/recorder/after-logout', opaque);
          return answer.status === 401 ? answer : undefined;
        },
      );
      expect(JSON.parse(refused.text)).toMatchObject({ error: 'invalid_token' });
      // Refused from the revocation view, with the JWT still cached: no introspection said so.
      expect(await all()).toBe(start);
      const seenBefore = received.length;
      // The entry was evicted: the next request introspects again (and is refused).
      expect((await viaGateway('/api/recorder/after-logout', opaque)).status).toBe(401);
      expect(received.length).toBe(seenBefore);
      expect(await introspections('inactive')).toBeGreaterThanOrEqual(1);
      expect((await all()) - start).toBe(1);
    },
    30_000,
  );

  it('refuses a token whose session ends while its introspection is in flight, and proxies nothing', async () => {
    const { access_token: opaque } = await signIn('opaque-race', 'opaque');
    const active = await introspections('active');
    const seenBefore = received.length;
    const pending = viaGateway('/api/recorder/race', opaque);
    // The introspection answered (active); the gateway holds that answer for HOLD_MS.
    await eventually('the introspection to answer', async () =>
      (await introspections('active')) > active ? true : undefined,
    );
    await endSession('/auth/logout', opaque);
    const answer = await pending;
    expect(answer.status).toBe(401);
    expect(JSON.parse(answer.text)).toMatchObject({ error: 'invalid_token' });
    expect(received.length).toBe(seenBefore);
  }, 30_000);

  it('refuses forged opaque tokens with 401, never 5xx, with no upstream call', async () => {
    const seenBefore = received.length;
    const statuses = [];
    for (const forged of [
      `at_${'A'.repeat(43)}.1`,
      'at_nope',
      `at_${'x'.repeat(600)}`,
      'at_%00%2e%2e',
    ])
      statuses.push((await viaGateway('/api/recorder/x', forged)).status);
    expect(statuses).toEqual([401, 401, 401, 401]);
    expect(received.length).toBe(seenBefore);
    expect(await introspections('error')).toBe(0);
  }, 30_000);
});
