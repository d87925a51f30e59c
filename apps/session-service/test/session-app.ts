import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { revocationEvent, type RevocationEvent } from '@app/contracts';
import {
  applySecurityHeaders,
  fastifyAdapter,
  restrictOpsEndpoints,
  trustProxyFromEnv,
} from '@app/observability';
import { testInfra, uniqueName } from '@app/testing';
import { Redis } from 'ioredis';
import { configureSessionApp } from '../src/http/openapi';
import { CLOCK, type Clock } from '../src/tokens/clock';

/** A clock the test moves by hand: expiry without sleeping. */
export class ManualClock implements Clock {
  constructor(private current = Date.now()) {}
  now(): number {
    return this.current;
  }
  advance(ms: number): void {
    this.current += ms;
  }
}

export interface SessionApp {
  url: string;
  clock: ManualClock;
  redis: Redis;
  prefix: string;
  app: NestFastifyApplication;
  close(): Promise<void>;
}

/**
 * The session service in-process on a real port, against the run's real Redis, with its own
 * key prefix and a manual clock. The environment is set before the app module loads, because
 * its configuration is validated when it is imported.
 */
export async function startSessionApp(env: Record<string, string> = {}): Promise<SessionApp> {
  const prefix = `${uniqueName('ss')}:`;
  const redisUrl = env.REDIS_URL ?? testInfra().redisUrl;
  Object.assign(process.env, {
    NODE_ENV: 'test',
    REDIS_URL: redisUrl,
    REDIS_KEY_PREFIX: prefix,
    OUTBOX_SHARDS: '4',
    SEED_DEMO_USERS: 'true',
    RATE_LIMIT_PER_IP: '100000',
    RATE_LIMIT_CONSECUTIVE_FAILS: '100000',
    RATE_LIMIT_FAILS_PER_IP: '100000',
    RATE_LIMIT_FAILS_PER_USERNAME: '100000',
    LOG_LEVEL: 'warn',
    ...env,
  });
  const { AppModule } = await import('../src/app.module.js');
  const clock = new ManualClock();
  const moduleRef = await Test.createTestingModule({ imports: [AppModule] })
    .overrideProvider(CLOCK)
    .useValue(clock)
    .compile();
  const app = moduleRef.createNestApplication<NestFastifyApplication>(
    fastifyAdapter({ trustProxy: trustProxyFromEnv() }),
    {
      logger: ['error', 'warn'],
    },
  );
  applySecurityHeaders(app);
  restrictOpsEndpoints(app, process.env.OPS_TOKEN);
  configureSessionApp(app);
  await app.listen(0, '127.0.0.1');
  const address = app.getHttpServer().address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const redis = new Redis(redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 0 });
  redis.on('error', () => undefined);
  return {
    url: `http://127.0.0.1:${port}`,
    clock,
    redis,
    prefix,
    app,
    async close() {
      await app.close();
      const keys = await redis.keys(`${prefix}*`).catch(() => []);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    },
  };
}

export interface OutboxRecord {
  event: RevocationEvent;
  key: string;
  sessionId: string | undefined;
  reason: string;
  initiator: string;
  eventTimestamp: number;
}

/** Every outbox entry under the app's prefix, decoded. */
export async function outbox(app: SessionApp): Promise<OutboxRecord[]> {
  const streams = await app.redis.keys(`${app.prefix}{o*}:outbox`);
  const records: OutboxRecord[] = [];
  for (const stream of streams) {
    for (const [, fields] of await app.redis.xrange(stream, '-', '+')) {
      const entry = Object.fromEntries(
        fields.flatMap((_, i) => (i % 2 === 0 ? [[fields[i], fields[i + 1]]] : [])),
      ) as Record<string, string>;
      const event = JSON.parse(entry.event ?? '{}') as {
        events: Record<
          string,
          {
            subject: { session?: { id: string } };
            reason_admin: { en: string };
            initiating_entity: string;
            event_timestamp: number;
          }
        >;
      };
      const revoked = Object.values(event.events)[0]!;
      records.push({
        event: revocationEvent.parse(event),
        key: entry.key ?? '',
        sessionId: revoked.subject.session?.id,
        reason: revoked.reason_admin.en,
        initiator: revoked.initiating_entity,
        eventTimestamp: revoked.event_timestamp,
      });
    }
  }
  return records;
}

/**
 * The file's app: started before its tests (with `env`), closed after them. Read `app` and
 * `call` (a client of it) inside the tests.
 */
export function sessionAppPerFile(env: Record<string, string> = {}): {
  app: SessionApp;
  call: ReturnType<typeof client>;
} {
  const file = {} as { app: SessionApp; call: ReturnType<typeof client> };
  beforeAll(async () => {
    file.app = await startSessionApp(env);
    file.call = client(file.app);
  });
  afterAll(async () => {
    await (file.app as SessionApp | undefined)?.close();
  });
  return file;
}

/** A small JSON client for the service. */
export function client(app: SessionApp) {
  return async function call(
    method: string,
    path: string,
    {
      body,
      token,
      headers,
    }: { body?: unknown; token?: string; headers?: Record<string, string> } = {},
  ): Promise<{ status: number; body: Record<string, unknown> & unknown[]; headers: Headers }> {
    const response = await fetch(`${app.url}${path}`, {
      method,
      headers: {
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...headers,
      },
      ...(body !== undefined
        ? { body: typeof body === 'string' ? body : JSON.stringify(body) }
        : {}),
    });
    const text = await response.text();
    return {
      status: response.status,
      body: text ? JSON.parse(text) : {},
      headers: response.headers,
    };
  };
}
