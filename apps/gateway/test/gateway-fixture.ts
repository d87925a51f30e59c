// What the gateway's integration specs run against: a real session service, publisher and
// content-api instances on the run's Kafka (or a broker of the spec's own) and Redis (a topic
// and key prefix of the spec's own), an upstream recorder that keeps what the gateway
// forwards, and the gateway instances as processes.
import { closeServer, testInfra, uniqueName } from '@app/testing';
import { Redis } from 'ioredis';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { startSystem, type AppHandle, type RunningSystem } from '../../../scripts/system.ts';

export interface GatewayFixture {
  system: RunningSystem;
  /** The first gateway instance. */
  gateway: AppHandle;
  /** Every gateway instance started with the fixture. */
  gateways: AppHandle[];
  /** Starts one more gateway instance, wired as the others. */
  startGateway(label: string, env?: Record<string, string>): Promise<AppHandle>;
  sessionUrl: string;
  redis: Redis;
  /** The gateway's own key prefix in Redis. */
  gatewayPrefix: string;
  /** Every request the recorder upstream (`/api/recorder/…`) received, and the one that never
   * answers (`/api/hang/…`, its URLs prefixed `hang:`). */
  received: { url: string; headers: IncomingHttpHeaders }[];
  stop(): Promise<void>;
}

export async function startGatewayFixture({
  name,
  sessionEnv = {},
  gatewayEnv = {},
  gateways = 1,
  contentInstances = 1,
  ownKafka = false,
}: {
  name: string;
  sessionEnv?: Record<string, string>;
  gatewayEnv?: Record<string, string>;
  gateways?: number;
  contentInstances?: number;
  /** A broker of the spec's own (to pause or kill it), not the run's shared one. */
  ownKafka?: boolean;
}): Promise<GatewayFixture> {
  const infra = testInfra();
  const topic = uniqueName('revocations');
  const keyPrefix = `${uniqueName(name)}:`;
  const gatewayPrefix = `${keyPrefix}gw:`;
  const received: GatewayFixture['received'] = [];
  const recorder = createServer((req, res) => {
    received.push({ url: req.url ?? '', headers: req.headers });
    // `/api/recorder/unauthorized…`: the answer an API's guard gives a token it refuses.
    if (req.url?.startsWith('/unauthorized') === true)
      res
        .writeHead(401, {
          'content-type': 'application/json',
          'www-authenticate': 'Bearer error="invalid_token"',
        })
        .end('{"error":"invalid_token","error_description":"refused by the recorder"}');
    else res.writeHead(200, { 'content-type': 'application/json' }).end('{"recorded":true}');
  });
  await new Promise<void>((resolve) => recorder.listen(0, '127.0.0.1', resolve));
  const recorderUrl = `http://127.0.0.1:${(recorder.address() as AddressInfo).port}`;
  // An upstream that takes every request and never answers (`/api/hang/…`).
  const hanging = createServer((req) => {
    received.push({ url: `hang:${req.url ?? ''}`, headers: req.headers });
  });
  await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
  const hangUrl = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}`;
  const system = await startSystem({
    dataDir: join(process.env.TEST_DATA_DIR ?? '/tmp', topic),
    apps: ['session-service', 'revocation-publisher', 'content-api'],
    instances: { 'content-api': contentInstances },
    ...(!ownKafka && { kafka: { brokers: infra.kafkaBrokers.join(',') } }),
    redis: { url: infra.redisUrl },
    env: (app): Record<string, string> => {
      switch (app) {
        case 'session-service':
          return {
            REDIS_KEY_PREFIX: keyPrefix,
            DEFAULT_MAX_DEVICES: '50',
            RATE_LIMIT_FAILS_PER_USERNAME: '1000',
            RATE_LIMIT_PER_IP: '1000',
            ...sessionEnv,
          };
        case 'revocation-publisher':
          return {
            REDIS_KEY_PREFIX: keyPrefix,
            REVOCATION_TOPIC: topic,
            HEARTBEAT_INTERVAL_MS: '200',
          };
        case 'content-api':
        case 'account-api':
          return { REVOCATION_TOPIC: topic };
        case 'gateway':
          return {
            REDIS_URL: infra.redisUrl,
            REVOCATION_TOPIC: topic,
            GATEWAY_KEY_PREFIX: gatewayPrefix,
            ...gatewayEnv,
          };
        case 'dev-idp':
        case 'ssf-transmitter':
          return {};
      }
    },
  });
  const sessionUrl = system.sessionServiceUrl;
  const startGateway = (label: string, env: Record<string, string> = {}) =>
    system.startApp('gateway', {
      label,
      env: {
        GATEWAY_UPSTREAMS: JSON.stringify({
          ...system.upstreams,
          recorder: [recorderUrl],
          hang: [hangUrl],
        }),
        ...env,
      },
    });
  let started: AppHandle[];
  try {
    started = await Promise.all(
      Array.from({ length: gateways }, (_, i) =>
        startGateway(gateways > 1 ? `${name}-${i + 1}` : name),
      ),
    );
  } catch (error) {
    await Promise.allSettled([system.stop(), closeServer(recorder), closeServer(hanging)]);
    throw error;
  }
  const [gateway] = started;
  if (gateway === undefined) throw new Error('no gateway started');
  const redis = new Redis(infra.redisUrl);
  return {
    system,
    gateway,
    gateways: started,
    startGateway,
    sessionUrl,
    redis,
    gatewayPrefix,
    received,
    async stop() {
      await Promise.allSettled([system.stop(), closeServer(recorder), closeServer(hanging)]);
      const keys = await redis.keys(`${keyPrefix}*`);
      if (keys.length > 0) await redis.del(...keys);
      await redis.quit();
    },
  };
}
