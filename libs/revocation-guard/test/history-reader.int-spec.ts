import {
  buildRevocationEvent,
  deadLetterTopic,
  DLQ_SOURCE_HEADER,
  encodeHeartbeat,
  encodeRevocation,
  KIND_HEADER,
  MessageKind,
  RevocationStore,
  SCHEMA_VERSION,
  SCHEMA_VERSION_HEADER,
  type RevocationEvent,
} from '@app/contracts';
import { ensureTopics } from '@app/kafka';
import { eventually, testInfra, uniqueName } from '@app/testing';
import { CompressionTypes, Kafka, logLevel, type Message, type Producer } from 'kafkajs';
import { Registry } from 'prom-client';
import { GuardMetrics } from '../src/guard-metrics';
import { VerifiedTokenCache } from '../src/verification/verified-token-cache';
import { PartitionFreshness } from '../src/view/freshness';
import { RevocationConsumer } from '../src/view/revocation-consumer';

// The replay's direct reading of the history (src/view/history-reader.ts), on a real broker:
// a guard that reads the history below KafkaJS's consumer ends with exactly the view of one
// whose consumer reads all of it, over a topic that holds what a replay meets (revocations of
// sessions and user-wide ones in batches of many sizes, heartbeats, a poison message, a valid
// revocation not written as the contract's encoder writes it, a compressed batch, and a window
// that starts inside a batch); each parks the poison message; what the direct reading leaves
// (the compressed batch's partition) the consumer reads; and the consumer goes on live after.

const PARTITIONS = 3;
const HOUR_MS = 3_600_000;

interface Reader {
  consumer: RevocationConsumer;
  store: RevocationStore;
  warnings: string[];
}

describe('replay: the history read below KafkaJS gives the same view as the consumer (real Kafka)', () => {
  const brokers = testInfra().kafkaBrokers;
  const topic = uniqueName('history-revocations');
  const kafka = new Kafka({
    clientId: uniqueName('history-test'),
    brokers,
    logLevel: logLevel.NOTHING,
  });
  let producer: Producer | undefined;
  const readers: Reader[] = [];
  const now = Date.now();
  /** Sessions revoked, each with the partition it went to. */
  const revokedSessions: string[] = [];
  /** Sessions whose revocation is on the topic before the replay window: never applied. */
  const beforeWindow: string[] = [];
  const usersRevoked = new Map<string, number>();

  const revocation = (userId: string, sessionId: string | undefined, at = now): RevocationEvent =>
    buildRevocationEvent({
      issuer: 'https://issuer.test',
      userId,
      sessionId,
      initiatingEntity: 'user',
      reason: 'logout',
      at,
    });

  const send = (messages: Message[], compression = CompressionTypes.None) =>
    producer!.send({ topic, acks: -1, compression, messages });

  /** `count` session revocations to `partition` in one send (one batch), user ids u<n>. */
  const sessions = (partition: number, count: number, tag: string): Message[] =>
    Array.from({ length: count }, (_, index) => {
      const sessionId = `${tag}-${partition}-${index}`;
      revokedSessions.push(sessionId);
      return { ...encodeRevocation(revocation(`u${index % 40}`, sessionId)), partition };
    });

  function startReader(directReplay: boolean, replayWindowMs = HOUR_MS): Reader {
    const store = new RevocationStore({ retentionMs: 2 * HOUR_MS });
    const freshness = new PartitionFreshness({ boundMs: 60_000 });
    const metrics = new GuardMetrics(new Registry(), {
      store,
      freshness,
      cache: new VerifiedTokenCache({ maxEntries: 10 }),
    });
    const warnings: string[] = [];
    const name = directReplay ? 'direct' : 'consumer';
    const consumer = new RevocationConsumer({
      kafka,
      topic,
      groupId: uniqueName(`history-${name}`),
      instanceName: `history-${name}`,
      replayWindowMs,
      fetchMaxWaitMs: 100,
      store,
      freshness,
      metrics,
      logger: {
        log: () => undefined,
        warn: (message) => warnings.push(message),
        error: (message) => warnings.push(message),
      },
      directReplay,
    });
    const reader = { consumer, store, warnings };
    readers.push(reader);
    return reader;
  }

  beforeAll(async () => {
    const admin = kafka.admin();
    await admin.connect();
    await ensureTopics(admin, [
      { topic, numPartitions: PARTITIONS },
      { topic: deadLetterTopic(topic), numPartitions: 1 },
    ]);
    await admin.disconnect();
    producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: true });
    await producer.connect();
    // Partition 0 starts with a batch half before the window (record timestamps 2 h ago) and
    // half in it: the window's first offset is inside that batch.
    await send(
      Array.from({ length: 10 }, (_, index) => {
        const sessionId = `straddling-${index}`;
        (index < 5 ? beforeWindow : revokedSessions).push(sessionId);
        return {
          ...encodeRevocation(revocation(`s${index}`, sessionId)),
          partition: 0,
          timestamp: String(index < 5 ? now - 2 * HOUR_MS : now),
        };
      }),
    );
    // Batches of many sizes on every partition, heartbeats between them.
    for (const size of [1, 7, 250, 1_200, 3]) {
      await send([0, 1, 2].flatMap((partition) => sessions(partition, size, `b${size}`)));
      await send(
        [0, 1, 2].map((partition) =>
          encodeHeartbeat(
            { publisher_id: 'test', sent_at: Date.now(), interval_ms: 500, partitions: PARTITIONS },
            partition,
          ),
        ),
      );
    }
    // User-wide revocations, a later one for the same user too.
    for (const [userId, at] of [
      ['u1', now - 60_000],
      ['u2', now - 30_000],
      ['u1', now - 10_000],
    ] as const) {
      usersRevoked.set(userId, at);
      await send([{ ...encodeRevocation(revocation(userId, undefined, at)), partition: 2 }]);
    }
    // A poison message (the revocation kind, not JSON), then a valid revocation written with
    // other spacing than the contract's encoder: decodeMessage's path, not the quick one.
    await send([
      {
        partition: 1,
        key: 'u7',
        value: 'not json',
        headers: { [KIND_HEADER]: MessageKind.Revocation, [SCHEMA_VERSION_HEADER]: SCHEMA_VERSION },
      },
      {
        ...encodeRevocation(revocation('u8', 'spaced-out')),
        value: JSON.stringify(revocation('u8', 'spaced-out'), null, 2),
        partition: 1,
      },
    ]);
    revokedSessions.push('spaced-out');
    // A gzip batch on partition 2, then more after it.
    await send(sessions(2, 20, 'gzip'), CompressionTypes.GZIP);
    await send(sessions(2, 30, 'after-gzip'));
  }, 60_000);

  afterAll(async () => {
    await Promise.allSettled(readers.map(({ consumer }) => consumer.stop()));
    await producer?.disconnect();
  });

  it('ends with the same view, parks the same poison message, and goes on live', async () => {
    const direct = startReader(true);
    const viaConsumer = startReader(false);
    await Promise.all([direct.consumer.start(), viaConsumer.consumer.start()]);
    await Promise.all([direct.consumer.replayed, viaConsumer.consumer.replayed]);

    // The window's half of the straddling batch; 5 sends of sessions to 3 partitions, each
    // followed by 3 heartbeats; 3 user-wide; the poison and the spaced one; gzip and after.
    const total = 5 + 3 * (1 + 7 + 250 + 1_200 + 3) + 5 * 3 + 3 + 2 + 20 + 30;
    for (const { consumer, store } of [direct, viaConsumer]) {
      expect(consumer.progress()).toMatchObject({ done: true, read: total, total });
      expect(store.size()).toEqual({ sessions: revokedSessions.length, users: 2 });
      for (const sid of revokedSessions)
        expect(store.check({ sid, sub: 'x', iat: 0 })).toBe('session_revoked');
      for (const sid of beforeWindow)
        expect(store.check({ sid, sub: 'x', iat: 0 })).toBeUndefined();
      // u1's later revocation wins: a token issued between the two is refused.
      const u1 = usersRevoked.get('u1')!;
      expect(store.check({ sid: 'new', sub: 'u1', iat: Math.floor(u1 / 1000) })).toBe(
        'user_revoked',
      );
      expect(
        store.check({ sid: 'new', sub: 'u1', iat: Math.floor(u1 / 1000) + 1 }),
      ).toBeUndefined();
    }
    // The direct reading read all it could and said what it left: the compressed batch on.
    expect(direct.warnings.filter((line) => line.includes('the consumer reads the rest'))).toEqual([
      expect.stringMatching(/1 partition\(s\): 2 \(a compressed batch\)$/),
    ]);
    expect(viaConsumer.warnings.some((line) => line.includes('reads the rest'))).toBe(false);

    // Each parked the poison message once, naming itself and its place.
    const parked = await eventually('both parked the poison message', async () => {
      const admin = kafka.admin();
      await admin.connect();
      const [offsets] = await admin.fetchTopicOffsets(deadLetterTopic(topic));
      await admin.disconnect();
      return offsets?.high === '2' && offsets;
    });
    expect(parked.high).toBe('2');
    const dlq = kafka.consumer({ groupId: uniqueName('history-dlq') });
    const sources: string[] = [];
    await dlq.connect();
    await dlq.subscribe({ topic: deadLetterTopic(topic), fromBeginning: true });
    await dlq.run({
      eachMessage: ({ message }) => {
        sources.push(String(message.headers?.[DLQ_SOURCE_HEADER]));
        return Promise.resolve();
      },
    });
    await eventually('the dead letters read', () => sources.length === 2);
    await dlq.disconnect();
    expect(sources.sort()).toEqual([
      expect.stringMatching(/^history-consumer .*\/1@\d+$/),
      expect.stringMatching(/^history-direct .*\/1@\d+$/),
    ]);

    // Live: the consumer took over where the direct reading ended.
    await send([{ ...encodeRevocation(revocation('u9', 'live-after-replay')), partition: 0 }]);
    await eventually('the live revocation applied by both', () =>
      [direct, viaConsumer].every(
        ({ store }) => store.check({ sid: 'live-after-replay', sub: 'u9', iat: 0 }) !== undefined,
      ),
    );
    expect(direct.store.size().sessions).toBe(revokedSessions.length + 1);
  }, 60_000);
});
