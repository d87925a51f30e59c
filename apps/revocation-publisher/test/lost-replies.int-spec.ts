import { execFileSync } from 'node:child_process';
import type { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { OUTBOX_GROUP, OutboxField, outboxStream } from '@app/contracts';
import { eventually, testInfra, TopicRecorder, uniqueName } from '@app/testing';
import { Redis } from 'ioredis';
import { revocations } from './publisher-fixture';

// A blocking XREADGROUP whose reply the client dropped (its command timeout fired first, as
// after a long pause of the process) leaves the delivered entries pending with a consumer
// that is alive and only ever reads new ones. The relay must re-read its pending entries
// after any failed read, so an entry Redis handed out is always relayed.

describe('revocation publisher: a read reply lost after Redis delivered it', () => {
  const { kafkaBrokers, redisUrl } = testInfra();
  const prefix = `${uniqueName('lost')}:`;
  const topic = uniqueName('lost-revocations');
  const stream = outboxStream({ prefix, shards: 1 }, 0);
  const blockMs = 300;
  const redis = new Redis(redisUrl);
  let app: INestApplicationContext;
  let recorder: TopicRecorder;

  beforeAll(async () => {
    Object.assign(process.env, {
      KAFKA_BROKERS: kafkaBrokers.join(','),
      REDIS_URL: redisUrl,
      REDIS_KEY_PREFIX: prefix,
      OUTBOX_SHARDS: '1',
      OUTBOX_BLOCK_MS: String(blockMs),
      OUTBOX_LINGER_MS: '0',
      // The relay waits 2 to 4 s after the failed read before it re-reads its pending entries,
      // so the test sees the entry pending in between even on a busy machine.
      PUBLISH_RETRY_INITIAL_MS: '4000',
      PUBLISH_RETRY_MAX_MS: '4000',
      REVOCATION_TOPIC: topic,
      TOPIC_PARTITIONS: '2',
      INSTANCE_ID: 'publisher-lost-reply',
      LOG_LEVEL: 'warn',
    });
    const { AppModule } = await import('../src/app.module.js');
    app = await NestFactory.createApplicationContext(AppModule, { logger: ['error'] });
    await app.init();
    await eventually('the topic to exist', async () => {
      const recorded = await TopicRecorder.start(kafkaBrokers, topic).catch(() => undefined);
      return recorded;
    }).then((started) => (recorder = started));
  });

  afterAll(async () => {
    await recorder.stop();
    await app.close();
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  /** The relay's reading connection, blocked in XREADGROUP on the stream. */
  async function blockedReader(): Promise<string | undefined> {
    const clients = String(await redis.client('LIST'));
    return clients.split('\n').find((line) => /cmd=xreadgroup/.test(line) && / flags=b/.test(line));
  }

  it('relays an entry delivered to a read that timed out on the client', async () => {
    const [event] = revocations(1, 1);
    await eventually('the relay to block in XREADGROUP', blockedReader);

    // One synchronous stretch of this process's event loop: Redis delivers the entry to the
    // blocked read, and the read's client timeout (block + 2 s) runs out meanwhile. Stalled in
    // the loop's check phase (setImmediate), the next turn runs timers before it polls the
    // socket: the timeout fires first, and the reply is dropped when it is read.
    await new Promise<void>((resolve) => {
      setImmediate(() => {
        execFileSync('redis-cli', [
          '-u',
          redisUrl,
          'XADD',
          stream,
          '*',
          OutboxField.Key,
          'user-0',
          OutboxField.Event,
          JSON.stringify(event),
        ]);
        const until = Date.now() + blockMs + 2_500;
        while (Date.now() < until); // the stall
        resolve();
      });
    });
    const delivered = (await redis.xpending(stream, OUTBOX_GROUP)) as [number, ...unknown[]];
    expect(delivered[0]).toBe(1); // Redis did hand it out: it sits pending with the relay's consumer

    await eventually(
      'the event on the topic',
      () => (recorder.distinctJtis().has(event!.jti) ? true : undefined),
      { timeoutMs: 15_000 },
    );
    await eventually('nothing pending, the outbox drained', async () => {
      const [pending] = (await redis.xpending(stream, OUTBOX_GROUP)) as [number];
      return pending === 0 && (await redis.xlen(stream)) === 0 ? true : undefined;
    });
  });
});
