import { join } from 'node:path';
import {
  buildRevocationEvent,
  OutboxField,
  outboxShard,
  outboxStream,
  type OutboxLayout,
  type RevocationEvent,
} from '@app/contracts';
import { testInfra, uniqueName } from '@app/testing';
import { Redis } from 'ioredis';
import { startApp, type AppHandle } from '../../../scripts/system.ts';
import { freePort } from '../../../scripts/lib/process.ts';

/** One isolated publisher setup: its own topic and key prefix on the run's Kafka and Redis. */
export class PublisherFixture {
  readonly topic = uniqueName('revocations');
  readonly layout: OutboxLayout = { prefix: `${uniqueName('pub')}:`, shards: 4 };
  readonly redis: Redis;
  readonly publishers: AppHandle[] = [];
  private readonly logDir = join(process.env.TEST_DATA_DIR ?? '/tmp', 'logs');

  constructor(
    readonly brokers: string[] = testInfra().kafkaBrokers,
    readonly redisUrl: string = testInfra().redisUrl,
  ) {
    this.redis = new Redis(redisUrl);
  }

  /**
   * Starts a publisher process; resolves once it is ready (topics provisioned). `instanceId`
   * is its INSTANCE_ID, unless `defaultIdentity`: then none is given, and it runs as process 1
   * of a pid namespace of its own, as in a container, to find out what it names itself.
   */
  async startPublisher(
    instanceId: string,
    env: Record<string, string> = {},
    { defaultIdentity = false } = {},
  ): Promise<AppHandle> {
    const publisher = await startApp({
      name: 'revocation-publisher',
      label: instanceId,
      port: await freePort(),
      logFile: join(this.logDir, `${this.topic}-${instanceId}.log`),
      ...(defaultIdentity
        ? { wrapper: ['unshare', '--pid', '--fork', '--kill-child', '--mount-proc'] }
        : {}),
      env: {
        KAFKA_BROKERS: this.brokers.join(','),
        REDIS_URL: this.redisUrl,
        REDIS_KEY_PREFIX: this.layout.prefix,
        OUTBOX_SHARDS: String(this.layout.shards),
        REVOCATION_TOPIC: this.topic,
        TOPIC_PARTITIONS: '6',
        ...(defaultIdentity ? {} : { INSTANCE_ID: instanceId }),
        OUTBOX_LEASE_MS: '2000',
        HEARTBEAT_INTERVAL_MS: '200',
        PUBLISH_RETRY_MAX_MS: '1000',
        LOG_LEVEL: 'log',
        ...env,
      },
    });
    this.publishers.push(publisher);
    return publisher;
  }

  /** Appends events to the outbox as the session service does: one entry per event, in the user's shard. */
  async write(events: RevocationEvent[]): Promise<void> {
    const pipeline = this.redis.pipeline();
    for (const event of events) {
      const user = userOf(event);
      pipeline.xadd(
        this.streamOf(user),
        '*',
        OutboxField.Key,
        user,
        OutboxField.Event,
        JSON.stringify(event),
      );
    }
    await pipeline.exec();
  }

  /** Appends an arbitrary entry, e.g. a malformed one. */
  async writeRaw(userId: string, fields: Record<string, string>): Promise<void> {
    await this.redis.xadd(this.streamOf(userId), '*', ...Object.entries(fields).flat());
  }

  private streamOf(userId: string): string {
    return outboxStream(this.layout, outboxShard(userId, this.layout.shards));
  }

  async outboxLength(): Promise<number> {
    const lengths = await Promise.all(
      Array.from({ length: this.layout.shards }, (_, shard) =>
        this.redis.xlen(outboxStream(this.layout, shard)),
      ),
    );
    return lengths.reduce((a, b) => a + b, 0);
  }

  async close(): Promise<void> {
    await Promise.all(this.publishers.map((publisher) => publisher.stop(10_000)));
    const keys = await this.redis.keys(`${this.layout.prefix}*`);
    if (keys.length > 0) await this.redis.del(...keys);
    await this.redis.quit();
  }
}

function userOf(event: RevocationEvent): string {
  return Object.values(event.events)[0]?.subject.user.id ?? '';
}

/** `count` logout events over `users` users; each user's events carry increasing times. */
export function revocations(
  count: number,
  users: number,
  issuer = 'http://127.0.0.1:3000',
): RevocationEvent[] {
  const start = Date.now();
  return Array.from({ length: count }, (_, i) =>
    buildRevocationEvent({
      issuer,
      userId: `user-${i % users}`,
      sessionId: `session-${i}`,
      initiatingEntity: 'user',
      reason: 'user_logout',
      at: start + i,
    }),
  );
}

/** Per user, whether the received events keep the order they were written in (by time). */
export function inOrderPerUser(received: { key: string; event: RevocationEvent }[]): boolean {
  const last = new Map<string, number>();
  return received.every(({ key, event }) => {
    const at = Object.values(event.events)[0]?.event_timestamp ?? 0;
    const ok = at >= (last.get(key) ?? 0);
    last.set(key, at);
    return ok;
  });
}
