// The gateway's revocation view over its lifetime, on a Kafka broker of this spec's own (it
// is paused here, which the run's shared broker must never be): a gateway started after a
// revocation refuses that session from its first ready moment (it replays the topic before
// it is ready), and a broker silent past the freshness bound makes the gateway answer 503,
// not 200, until it is back (invariant 8 of DESIGN.md).
import { eventually } from '@app/testing';
import type { Redis } from 'ioredis';
import type { AppHandle, RunningSystem } from '../../../scripts/system.ts';
import { browserLogin, call, entryKey, ORIGIN, phoneLogin } from './gateway-calls';
import { startGatewayFixture, type GatewayFixture } from './gateway-fixture';

const FRESHNESS_BOUND_MS = 2_000;

let fixture: GatewayFixture;
let system: RunningSystem;
let gateway: AppHandle;
let sessionUrl: string;
let redis: Redis;
let prefix: string;

beforeAll(async () => {
  fixture = await startGatewayFixture({
    name: 'gateway-lifecycle',
    ownKafka: true,
    gatewayEnv: {
      GATEWAY_ALLOWED_ORIGINS: ORIGIN,
      FRESHNESS_BOUND_MS: String(FRESHNESS_BOUND_MS),
    },
  });
  ({ system, gateway, sessionUrl, redis, gatewayPrefix: prefix } = fixture);
}, 180_000);

afterAll(async () => {
  await fixture.stop();
});

describe('gateway lifecycle (a broker of its own)', () => {
  it('a gateway started after a revocation refuses that session from its first ready moment', async () => {
    const { handle } = await browserLogin(gateway.url, 'alice', 'browser-before');
    const key = entryKey(prefix, handle);
    const entry = (await redis.get(key)) ?? '';
    const { access_token } = JSON.parse(entry) as { access_token: string };
    const phone = await phoneLogin(sessionUrl, 'alice', 'phone-before');
    expect(
      (await call(sessionUrl, 'POST', '/auth/logout-all', { bearer: phone.access_token })).status,
    ).toBe(204);
    // The revocation is on the topic: an API instance applied it.
    const api = system.app('content-api');
    await eventually('content-api to refuse the session', async () =>
      (await call(api.url, 'GET', '/me', { bearer: access_token })).status === 401
        ? true
        : undefined,
    );

    const late = await fixture.startGateway('gateway-lifecycle-late');
    await redis.set(key, entry, 'PX', 60_000);
    // Its very first answer, no waiting: ready means the revocations were replayed.
    // The recorder answers 200 to anything: a 401 on its route can only be the gateway's.
    const first = await call(late.url, 'GET', '/api/recorder/x', { cookie: handle });
    expect(first.status).toBe(401);
    expect(first.json).toMatchObject({
      error: 'invalid_token',
      error_description: expect.stringMatching(/revoked/) as unknown,
    });
    await redis.set(key, entry, 'PX', 60_000);
    expect((await call(late.url, 'GET', '/bff/session', { cookie: handle })).status).toBe(401);
    await system.stopApp(late);
  }, 90_000);

  it('answers 503, not 200, while the broker is silent past the freshness bound, and 200 again after', async () => {
    const { handle } = await browserLogin(gateway.url, 'bob', 'browser-paused');
    // The recorder has no revocation view: a 503 on its route can only be the gateway's.
    const me = () => call(gateway.url, 'GET', '/api/recorder/x', { cookie: handle });
    expect((await me()).status).toBe(200);
    const pid = system.kafka?.pid;
    if (pid === undefined) throw new Error('no broker of its own');
    process.kill(pid, 'SIGSTOP');
    try {
      const stale = await eventually(
        'the gateway to answer 503 past the freshness bound',
        async () => {
          const answer = await me();
          return answer.status === 503 || answer.status === 401 ? answer : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 200 },
      );
      expect(stale.status).toBe(503);
      expect(stale.headers.get('retry-after')).toBe('1');
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await eventually(
      'the gateway to serve again once the broker is back',
      async () => ((await me()).status === 200 ? true : undefined),
      { timeoutMs: 90_000, intervalMs: 250 },
    );
  }, 180_000);

  it('paused (SIGSTOP) while a session is revoked, it never lets that cookie through once resumed; another session goes on', async () => {
    const { handle: revoked } = await browserLogin(gateway.url, 'bob', 'browser-stalled');
    const { handle: live } = await browserLogin(gateway.url, 'alice', 'browser-live');
    const phone = await phoneLogin(sessionUrl, 'bob', 'phone-stalled');
    const at = (handle: string) => call(gateway.url, 'GET', '/api/recorder/x', { cookie: handle });
    expect((await at(revoked)).status).toBe(200);
    const pid = gateway.pid;
    if (pid === undefined) throw new Error('the gateway has no pid');
    // A stall (GC, a starved VM): the revocation happens while the gateway cannot read it.
    process.kill(pid, 'SIGSTOP');
    try {
      const ended = await call(sessionUrl, 'POST', '/auth/logout-all', {
        bearer: phone.access_token,
      });
      expect(ended.status).toBe(204);
      await new Promise((resolve) => setTimeout(resolve, 3_000));
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    // Resumed: 503 while its view catches up (stale past the bound), then 401; never 200.
    const seen: number[] = [];
    await eventually(
      'the resumed gateway to refuse the revoked cookie',
      async () => {
        const { status } = await at(revoked);
        seen.push(status);
        return status === 401 ? true : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 100 },
    );
    expect(seen.filter((status) => status !== 401 && status !== 503)).toEqual([]);
    await eventually(
      'the live session to be served again',
      async () => ((await at(live)).status === 200 ? true : undefined),
      { timeoutMs: 60_000, intervalMs: 250 },
    );
  }, 180_000);
});
