// The revocation-aware API services as separate processes on the real broker: two content-api
// instances and one account-api, fed by a real session service and revocation publisher.
import {
  buildRevocationEvent,
  deadLetterTopic,
  encodeRevocation,
  KIND_HEADER,
  SCHEMA_VERSION,
  SCHEMA_VERSION_HEADER,
} from '@app/contracts';
import { eventually, testInfra, TopicRecorder, uniqueName } from '@app/testing';
import { Redis } from 'ioredis';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { join } from 'node:path';
import { startSystem, type AppHandle, type RunningSystem } from '../../scripts/system.ts';

const infra = testInfra();
const topic = uniqueName('revocations');
const keyPrefix = `${uniqueName('api')}:`;
const FRESHNESS_BOUND_MS = 2_000;
const FILLER_EVENTS = 50_000;

let system: RunningSystem;
let sessionUrl: string;
let publisher: AppHandle;
const apis: AppHandle[] = [];
let producer: Producer;
let dlq: TopicRecorder;
let redis: Redis;

async function startApi(name: 'content-api' | 'account-api', label: string): Promise<AppHandle> {
  const api = await system.startApp(name, { label });
  apis.push(api);
  return api;
}

async function signIn(device: string, username = 'alice'): Promise<{ token: string; sid: string }> {
  const response = await fetch(`${sessionUrl}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password: `${username}-pass`, device: { name: device } }),
  });
  expect(response.status).toBe(200);
  const body = (await response.json()) as { access_token: string; session_id: string };
  return { token: body.access_token, sid: body.session_id };
}

async function logout(token: string): Promise<void> {
  const response = await fetch(`${sessionUrl}/auth/logout`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
  });
  expect(response.status).toBe(204);
}

interface Answer {
  status: number;
  challenge: string | null;
  retryAfter: string | null;
  body: unknown;
}

async function me(api: AppHandle, token: string): Promise<Answer> {
  const response = await fetch(`${api.url}/me`, { headers: { authorization: `Bearer ${token}` } });
  return {
    status: response.status,
    challenge: response.headers.get('www-authenticate'),
    retryAfter: response.headers.get('retry-after'),
    body: await response.json(),
  };
}

/** Every instance's answer, once all of them give `status`. */
function allAnswer(instances: AppHandle[], token: string, status: number): Promise<Answer[]> {
  return eventually(`all ${instances.length} instances to answer ${status}`, async () => {
    const answers = await Promise.all(instances.map((api) => me(api, token)));
    return answers.every((answer) => answer.status === status) ? answers : undefined;
  });
}

/** Valid logouts of other users, written straight to the topic as the publisher would. */
async function produceFiller(count: number): Promise<void> {
  const at = Date.now();
  for (let sent = 0; sent < count; sent += 5_000) {
    const messages = Array.from({ length: Math.min(5_000, count - sent) }, (_, i) =>
      encodeRevocation(
        buildRevocationEvent({
          issuer: sessionUrl,
          userId: `filler-${(sent + i) % 997}`,
          sessionId: `filler-session-${sent + i}`,
          initiatingEntity: 'user',
          reason: 'user_logout',
          at: at + sent + i,
        }),
      ),
    );
    await producer.send({ topic, messages });
  }
}

async function metric(api: AppHandle, name: string): Promise<number> {
  const text = await (await fetch(`${api.url}/metrics`)).text();
  const line = text.split('\n').find((entry) => entry.startsWith(name));
  return line === undefined ? NaN : Number(line.slice(line.lastIndexOf(' ') + 1));
}

beforeAll(async () => {
  // The run's Kafka and Redis; this file's own topic and key prefix.
  system = await startSystem({
    dataDir: join(process.env.TEST_DATA_DIR ?? '/tmp', topic),
    apps: ['session-service', 'revocation-publisher'],
    kafka: { brokers: infra.kafkaBrokers.join(',') },
    redis: { url: infra.redisUrl },
    env: (app): Record<string, string> => {
      switch (app) {
        case 'session-service':
          return {
            REDIS_KEY_PREFIX: keyPrefix,
            OUTBOX_SHARDS: '4',
            SEED_DEMO_USERS: 'true',
            DEFAULT_MAX_DEVICES: '50',
            RATE_LIMIT_FAILS_PER_USERNAME: '1000',
            RATE_LIMIT_PER_IP: '1000',
          };
        case 'revocation-publisher':
          return {
            REDIS_KEY_PREFIX: keyPrefix,
            OUTBOX_SHARDS: '4',
            REVOCATION_TOPIC: topic,
            TOPIC_PARTITIONS: '6',
            HEARTBEAT_INTERVAL_MS: '200',
          };
        case 'content-api':
        case 'account-api':
        case 'gateway':
          return { REVOCATION_TOPIC: topic, FRESHNESS_BOUND_MS: String(FRESHNESS_BOUND_MS) };
        case 'dev-idp':
        case 'ssf-transmitter':
          return {};
      }
    },
  });
  sessionUrl = system.sessionServiceUrl;
  publisher = system.app('revocation-publisher');
  await Promise.all([
    startApi('content-api', 'content-1'),
    startApi('content-api', 'content-2'),
    startApi('account-api', 'account-1'),
  ]);
  const kafka = new Kafka({
    clientId: uniqueName('api-test'),
    brokers: infra.kafkaBrokers,
    logLevel: logLevel.NOTHING,
  });
  producer = kafka.producer();
  await producer.connect();
  dlq = await TopicRecorder.start(infra.kafkaBrokers, deadLetterTopic(topic));
  redis = new Redis(infra.redisUrl);
});

afterAll(async () => {
  await Promise.allSettled([system.stop(), producer.disconnect(), dlq.stop()]);
  const keys = await redis.keys(`${keyPrefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
});

describe('API services enforcing revocations received through Kafka', () => {
  let revokedToken: string;

  it('a logout reaches all three instances of the two services', async () => {
    const phone = await signIn('phone');
    const laptop = await signIn('laptop');
    const accepted = await allAnswer(apis, phone.token, 200);
    expect(accepted.map((answer) => answer.body)).toEqual(
      apis.map(() => ({ sub: 'alice', session_id: phone.sid })),
    );
    await logout(phone.token);
    const rejected = await allAnswer(apis, phone.token, 401);
    for (const answer of rejected) {
      expect(answer.challenge).toBe(
        'Bearer error="invalid_token", error_description="session revoked"',
      );
      expect(answer.body).toEqual({
        error: 'invalid_token',
        error_description: 'session revoked',
      });
    }
    await allAnswer(apis, laptop.token, 200); // the user's other session is untouched
    for (const api of apis)
      expect(
        await metric(api, 'revocation_guard_events_total{kind="revocation",result="applied"'),
      ).toBeGreaterThanOrEqual(1);
    revokedToken = phone.token;
  });

  it('an instance started after a revocation rejects the token from its first ready moment', async () => {
    // Enough history ahead of the revocation that a replay takes a while: an instance that
    // reported ready before reading to the end would still accept the token.
    await produceFiller(FILLER_EVENTS);
    const live = await signIn('tablet');
    const doomed = await signIn('old-phone');
    await logout(doomed.token);
    await allAnswer(apis, doomed.token, 401);
    const late = await startApi('content-api', 'content-late'); // resolves at /health/ready 200
    const first = await me(late, doomed.token);
    expect(first.status).toBe(401);
    expect(first.challenge).toContain('session revoked');
    expect((await me(late, revokedToken)).status).toBe(401);
    expect((await me(late, live.token)).status).toBe(200);
    const ready = (await (await fetch(`${late.url}/health/ready`)).json()) as {
      details: { revocations: { replay: { done: boolean; read: number; total: number } } };
    };
    expect(ready.details.revocations.replay).toMatchObject({ done: true });
    expect(ready.details.revocations.replay.read).toBeGreaterThanOrEqual(FILLER_EVENTS);
    await late.stop(10_000);
    apis.splice(apis.indexOf(late), 1);
  });

  it('parks a poison message in the dead-letter topic, and applies the events after it', async () => {
    const before = await Promise.all(
      apis.map((api) => metric(api, 'revocation_guard_invalid_messages_total')),
    );
    await producer.send({
      topic,
      messages: [
        {
          key: 'alice',
          value: '{"not":"a revocation"',
          headers: { [KIND_HEADER]: 'revocation', [SCHEMA_VERSION_HEADER]: SCHEMA_VERSION },
        },
        { key: 'alice', value: 'no kind header at all' },
      ],
    });
    const next = await signIn('watch');
    await allAnswer(apis, next.token, 200);
    await logout(next.token);
    await allAnswer(apis, next.token, 401);
    const parked = await eventually('each instance to park both messages', () =>
      dlq.invalid.length >= apis.length * 2 ? dlq.invalid : undefined,
    );
    expect(parked).toHaveLength(apis.length * 2);
    const sources = parked.map((letter) => letter.headers['dlq-source'] ?? '');
    for (const label of ['content-1', 'content-2', 'account-1'])
      expect(sources.filter((source) => source.includes(`/${label} ${topic}/`))).toHaveLength(2);
    expect(parked.map((letter) => letter.headers['dlq-reason'])).toEqual(
      expect.arrayContaining([
        'revocation: value is not JSON',
        'unknown message kind (no kind header)',
      ]),
    );
    const after = await Promise.all(
      apis.map((api) => metric(api, 'revocation_guard_invalid_messages_total')),
    );
    expect(after.map((count, i) => count - (before[i] ?? 0))).toEqual(apis.map(() => 2));
  });

  it('refuses forged tokens with 401 and keeps serving', async () => {
    const valid = await signIn('desk');
    const [header, payload] = valid.token.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as object;
    const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const forgeries = [
      `${encode({ alg: 'none', typ: 'at+jwt' })}.${payload}.`,
      `${header}.${encode({ ...claims, sub: 'admin' })}.${valid.token.split('.')[2] ?? ''}`,
      'x'.repeat(10 * 1024),
      '%%%not-base64%%%',
    ];
    const [api] = apis as [AppHandle];
    for (const forged of forgeries) {
      const answer = await me(api, forged);
      expect(answer.status).toBe(401);
      expect(answer.challenge).toMatch(/^Bearer error="invalid_token"/);
    }
    expect((await me(api, valid.token)).status).toBe(200);
  });

  it('answers 503 once heartbeats stop for longer than the bound, and recovers when they resume', async () => {
    const { token } = await signIn('kiosk');
    await allAnswer(apis, token, 200);
    await system.stopApp(publisher);
    const stale = await allAnswer(apis, token, 503);
    for (const answer of stale) {
      expect(answer.retryAfter).toBe('1');
      expect(answer.body).toMatchObject({ error: 'temporarily_unavailable' });
    }
    const [api] = apis as [AppHandle];
    const ready = (await (await fetch(`${api.url}/health/ready`)).json()) as {
      details: { revocations: { freshness: { fresh: boolean; stalest_age_ms: number } } };
    };
    expect(ready.details.revocations.freshness.fresh).toBe(false);
    expect(ready.details.revocations.freshness.stalest_age_ms).toBeGreaterThan(FRESHNESS_BOUND_MS);
    expect(await metric(api, 'revocation_guard_view_fresh')).toBe(0);
    publisher = await system.restartApp(publisher);
    await allAnswer(apis, token, 200);
    expect(await metric(api, 'revocation_guard_view_fresh')).toBe(1);
  });
});
