import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { OUTBOX_GROUP, outboxStream } from '@app/contracts';
import { createKafka } from '@app/kafka';
import { ConfigResourceTypes } from 'kafkajs';
import { eventually, testInfra, TopicRecorder, uniqueName } from '@app/testing';
import { startKafka, type KafkaHandle } from '../../../scripts/kafka/kafka.ts';
import { freePort } from '../../../scripts/lib/process.ts';
import { startRedis, type RedisHandle } from '../../../scripts/redis/redis.ts';
import { inOrderPerUser, PublisherFixture, revocations } from './publisher-fixture';

// Nothing is lost when the broker or a publisher dies: every event arrives after recovery.
// Duplicates are allowed (at least once) and counted.

function firstOccurrences<T extends { event: { jti: string } }>(received: T[]): T[] {
  const seen = new Set<string>();
  return received.filter((r) => !seen.has(r.event.jti) && seen.add(r.event.jti));
}

describe('revocation publisher under failure', () => {
  describe('the Kafka broker is killed while revocations are written', () => {
    let kafka: KafkaHandle;
    let fixture: PublisherFixture;

    beforeAll(async () => {
      // A broker of its own: killing the run's shared broker would disturb other tests.
      kafka = await startKafka({
        port: await freePort(),
        dataDir: join(process.env.TEST_DATA_DIR ?? '/tmp', uniqueName('kafka')),
      });
      fixture = new PublisherFixture([kafka.brokers], testInfra().redisUrl);
      await fixture.startPublisher('publisher-k');
    });

    afterAll(async () => {
      await fixture.close();
      await kafka.stop();
    });

    it('delivers all 500 after the broker comes back 10 s later', async () => {
      const events = revocations(500, 25);
      const recorderBefore = await TopicRecorder.start([kafka.brokers], fixture.topic);
      await fixture.write(events.slice(0, 100));
      await kafka.kill(); // SIGKILL, mid-stream
      await recorderBefore.stop().catch(() => undefined);
      await fixture.write(events.slice(100));
      await sleep(10_000);
      await kafka.restart();

      const recorder = await TopicRecorder.start([kafka.brokers], fixture.topic);
      try {
        await eventually(
          'all 500 events after recovery',
          () => (recorder.distinctJtis().size >= 500 ? true : undefined),
          {
            timeoutMs: 90_000,
          },
        );
        expect(recorder.distinctJtis()).toEqual(new Set(events.map((e) => e.jti)));
        expect(inOrderPerUser(firstOccurrences(recorder.revocations))).toBe(true);
        process.stderr.write(
          `broker kill: ${recorder.revocations.length - 500} duplicates of 500\n`,
        );
        await eventually('the outbox to drain', async () =>
          (await fixture.outboxLength()) === 0 ? true : undefined,
        );
      } finally {
        await recorder.stop();
      }
    });
  });

  describe('a publisher is killed in the middle of a stream', () => {
    let fixture: PublisherFixture;
    let recorder: TopicRecorder;

    beforeEach(async () => {
      fixture = new PublisherFixture();
      await fixture.startPublisher('publisher-a');
      recorder = await TopicRecorder.start(fixture.brokers, fixture.topic);
    });

    afterEach(async () => {
      await recorder.stop();
      await fixture.close();
    });

    /** Writes `events` in small slices while `during` runs, as a live session service would. */
    async function stream(
      events: ReturnType<typeof revocations>,
      during: () => Promise<void>,
      { slice = 20, spacingMs = 10 } = {},
    ): Promise<void> {
      const writing = (async () => {
        for (let i = 0; i < events.length; i += slice) {
          await fixture.write(events.slice(i, i + slice));
          await sleep(spacingMs);
        }
      })();
      await sleep(50);
      await during();
      await writing;
    }

    /** Every event arrived (duplicates allowed, and reported), each user's first copies in order. */
    async function expectAllArrived(
      events: ReturnType<typeof revocations>,
      label: string,
    ): Promise<void> {
      await eventually(
        `all ${events.length} events`,
        () => (recorder.distinctJtis().size >= events.length ? true : undefined),
        { timeoutMs: 60_000 },
      );
      expect(recorder.distinctJtis()).toEqual(new Set(events.map((e) => e.jti)));
      expect(inOrderPerUser(firstOccurrences(recorder.revocations))).toBe(true);
      const duplicates = recorder.revocations.length - events.length;
      process.stderr.write(`${label}: ${duplicates} duplicates of ${events.length}\n`);
    }

    it('restarted under the same name, it relays what it left pending and the rest', async () => {
      const events = revocations(600, 30);
      await stream(events, async () => {
        await fixture.publishers[0]!.kill();
        await fixture.startPublisher('publisher-a');
      });
      await expectAllArrived(events, 'publisher restart');
    });

    it('paused again and again (SIGSTOP 3.5 s, SIGCONT), it relays every event', async () => {
      // A pause longer than a blocking read's client timeout (block + 2 s) makes replies of
      // reads Redis already answered arrive after their timeout: those entries must not be lost.
      const events = revocations(400, 40);
      await stream(
        events,
        async () => {
          const publisher = fixture.publishers[0]!;
          for (let pause = 0; pause < 4; pause += 1) {
            process.kill(publisher.pid!, 'SIGSTOP');
            await sleep(3_500);
            process.kill(publisher.pid!, 'SIGCONT');
            await sleep(300);
          }
        },
        { slice: 10, spacingMs: 400 },
      );
      await expectAllArrived(events, 'publisher paused 4 times');
    });

    it('a second instance takes over its shards when its lease runs out', async () => {
      await fixture.startPublisher('publisher-b'); // standby: publisher-a holds every shard
      const events = revocations(600, 30);
      await stream(events, async () => {
        await fixture.publishers[0]!.kill();
      });
      await expectAllArrived(events, 'takeover');
      const metrics = await (await fetch(`${fixture.publishers[1]!.url}/metrics`)).text();
      expect(metrics).toMatch(/^publisher_owned_shards\{[^}]*\} 4$/m);
    });
  });
});

describe('revocation publisher: its outbox consumer group disappears (NOGROUP)', () => {
  const fixture = new PublisherFixture();
  let recorder: TopicRecorder;

  beforeAll(async () => {
    await fixture.startPublisher('publisher-g');
    recorder = await TopicRecorder.start(fixture.brokers, fixture.topic);
  });

  afterAll(async () => {
    await recorder.stop();
    await fixture.close();
  });

  it('recreates the group from the start of each stream and relays everything, its readiness saying how the relay is', async () => {
    const ready = async () =>
      (await fetch(`${fixture.publishers[0]!.url}/health/ready`)).json() as Promise<{
        info?: Record<string, unknown>;
        error?: Record<string, unknown>;
      }>;
    expect((await ready()).info).toHaveProperty('relay');
    const events = revocations(100, 10);
    await fixture.write(events.slice(0, 50));
    // As after a restore of Redis from before the group existed, or a flush of its metadata.
    for (let shard = 0; shard < fixture.layout.shards; shard += 1)
      await fixture.redis.xgroup('DESTROY', outboxStream(fixture.layout, shard), OUTBOX_GROUP);
    await fixture.write(events.slice(50));
    await eventually(
      'all 100 events',
      () => (recorder.distinctJtis().size >= 100 ? true : undefined),
      { timeoutMs: 30_000 },
    );
    expect(recorder.distinctJtis()).toEqual(new Set(events.map((e) => e.jti)));
    await eventually('the outbox to drain', async () =>
      (await fixture.outboxLength()) === 0 ? true : undefined,
    );
    expect((await ready()).info).toHaveProperty('relay');
  });
});

describe('revocation publisher: heartbeats vouch only for what the relay has read', () => {
  let redis: RedisHandle;
  let fixture: PublisherFixture;
  let recorder: TopicRecorder;

  beforeAll(async () => {
    // A Redis of its own, to stall it.
    redis = await startRedis({
      dataDir: join(process.env.TEST_DATA_DIR ?? '/tmp', uniqueName('redis')),
    });
    fixture = new PublisherFixture(testInfra().kafkaBrokers, redis.url);
    await fixture.startPublisher('publisher-v');
    recorder = await TopicRecorder.start(fixture.brokers, fixture.topic);
  });

  afterAll(async () => {
    await recorder.stop();
    await fixture.close().catch(() => undefined);
    await redis.stop();
  });

  it('while its Redis is stalled, no heartbeat claims an instant after the stall began', async () => {
    await eventually('heartbeats flowing', () =>
      recorder.heartbeats.length > 12 ? true : undefined,
    );
    const stalledAt = Date.now();
    process.kill(redis.pid!, 'SIGSTOP');
    await sleep(3_000);
    process.kill(redis.pid!, 'SIGCONT');
    const during = recorder.heartbeats.filter(
      (h) => h.timestamp > stalledAt + 100 && h.timestamp < stalledAt + 3_000,
    );
    expect(during.length).toBeGreaterThan(6); // heartbeats went on, Kafka was fine
    for (const { heartbeat, timestamp } of during)
      expect({ timestamp, vouchesFor: heartbeat.sent_at <= stalledAt }).toEqual({
        timestamp,
        vouchesFor: true,
      });
    // Once Redis answers again, they vouch for the present again.
    await eventually('a heartbeat vouching for after the stall', () =>
      recorder.heartbeats.some((h) => h.heartbeat.sent_at > stalledAt + 3_000) ? true : undefined,
    );
  });
});

describe('revocation publisher: a batch the broker refuses for good', () => {
  const fixture = new PublisherFixture();
  let recorder: TopicRecorder;

  beforeAll(async () => {
    await fixture.startPublisher('publisher-m', {
      OUTBOX_BATCH_SIZE: '1000',
      OUTBOX_LINGER_MS: '50',
    });
    recorder = await TopicRecorder.start(fixture.brokers, fixture.topic);
  });

  afterAll(async () => {
    await recorder.stop();
    await fixture.close();
  });

  it('a batch too large for the topic is split until it passes; nothing stops for every shard', async () => {
    // The topic now takes no record batch over 4 KB: a burst of 600 events (~400 KB) in one
    // batch is refused with MESSAGE_TOO_LARGE, which no retry of the same batch can cure.
    const admin = createKafka({ brokers: fixture.brokers, clientId: 'failures-test' }).admin();
    await admin.connect();
    try {
      await admin.alterConfigs({
        validateOnly: false,
        resources: [
          {
            type: ConfigResourceTypes.TOPIC,
            name: fixture.topic,
            configEntries: [{ name: 'max.message.bytes', value: '4096' }],
          },
        ],
      });
    } finally {
      await admin.disconnect();
    }
    const events = revocations(600, 60);
    await fixture.write(events);
    await eventually(
      'all 600 events',
      () => (recorder.distinctJtis().size >= 600 ? true : undefined),
      { timeoutMs: 60_000 },
    );
    expect(recorder.distinctJtis()).toEqual(new Set(events.map((e) => e.jti)));
    await eventually('the outbox to drain', async () =>
      (await fixture.outboxLength()) === 0 ? true : undefined,
    );
  });
});
