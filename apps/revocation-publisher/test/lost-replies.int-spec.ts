import { execFileSync } from 'node:child_process';
import type { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { OUTBOX_GROUP, OutboxField, outboxStream, type RevocationEvent } from '@app/contracts';
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
  // Long enough that the read checked as blocked is still blocked when the entry is added,
  // on a machine so busy that redis-cli takes hundreds of milliseconds to start.
  const blockMs = 1_500;
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

  /** Whether CLIENT LIST shows a connection blocked in XREADGROUP (the relay's). */
  const readBlocked = (clients: string) =>
    clients.split('\n').some((line) => /cmd=xreadgroup/.test(line) && / flags=b/.test(line));

  async function blockedReader(): Promise<true | undefined> {
    return readBlocked(String(await redis.client('LIST'))) || undefined;
  }

  it('relays an entry delivered to a read that timed out on the client', async () => {
    await eventually('the relay to block in XREADGROUP', blockedReader);

    // One synchronous stretch of this process's event loop: Redis delivers the entry to the
    // blocked read, and the read's client timeout (block + 2 s) runs out meanwhile. Stalled in
    // the loop's check phase (setImmediate), the next turn runs timers before it polls the
    // socket: the timeout fires first, and the reply is dropped when it is read. The entry is
    // added only while a read is blocked, checked within the stretch: a read whose block ran
    // out just before would leave it to no one (the relay runs in this process, stalled too).
    const redisCli = (...args: string[]) =>
      execFileSync('redis-cli', ['-u', redisUrl, ...args], { encoding: 'utf8' });
    const addedToBlockedRead = (event: RevocationEvent) =>
      new Promise<boolean>((resolve) => {
        setImmediate(() => {
          if (!readBlocked(redisCli('CLIENT', 'LIST'))) {
            resolve(false);
            return;
          }
          const fields = [OutboxField.Key, 'user-0', OutboxField.Event, JSON.stringify(event)];
          redisCli('XADD', stream, '*', ...fields);
          const until = Date.now() + blockMs + 2_500;
          while (Date.now() < until); // the stall
          resolve(true);
        });
      });
    const drained = () =>
      eventually('nothing pending, the outbox drained', async () => {
        const [pending] = (await redis.xpending(stream, OUTBOX_GROUP)) as [number];
        return pending === 0 && (await redis.xlen(stream)) === 0 ? true : undefined;
      });

    let lost: RevocationEvent | undefined;
    await eventually(
      'an entry delivered to a read whose reply was dropped',
      async () => {
        const [event] = revocations(1, 1);
        if (event === undefined || !(await addedToBlockedRead(event))) return undefined;
        const [pending] = (await redis.xpending(stream, OUTBOX_GROUP)) as [number];
        // Redis did hand it out: it sits pending with the relay's consumer.
        if (pending === 1) return (lost = event);
        // The blocked read was another spec's relay (the Redis is shared): this entry was left
        // to the relay's next read, which relays it as usual; again once it did.
        await drained();
        return undefined;
      },
      { timeoutMs: 60_000 },
    );

    await eventually(
      'the event on the topic',
      () => (lost !== undefined && recorder.distinctJtis().has(lost.jti) ? true : undefined),
      { timeoutMs: 15_000 },
    );
    await drained();
  });
});
