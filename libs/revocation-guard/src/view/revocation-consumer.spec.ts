import {
  buildRevocationEvent,
  encodeHeartbeat,
  encodeRevocation,
  RevocationStore,
} from '@app/contracts';
import type { ConsumerRunConfig, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import { Registry } from 'prom-client';
import { setTimeout as sleep } from 'node:timers/promises';
import { GuardMetrics } from '../guard-metrics';
import { VerifiedTokenCache } from '../verification/verified-token-cache';
import { PartitionFreshness } from './freshness';
import { RevocationConsumer } from './revocation-consumer';

// The consumer's watchdog, with a stand-in for KafkaJS (two empty partitions at start, then
// batches the test hands to one consumer or another): a consumer that reads one partition and
// not the other (stuck on the broker leading it) is replaced by one in a group of its own,
// which seeks to the positions the first one reached; the replaced one's batches are ignored.
// So is one that hears from no partition while its requests time out (its group coordinator
// does not answer). Partitions ageing together without a timeout (no publisher) replace nothing.

const T0 = 1_800_000_000_000;
const STALL_MS = 1_000;

const at = (offset: number, encoded: { key: unknown; value: unknown; headers: unknown }) =>
  ({ ...encoded, offset: String(offset), timestamp: '0', attributes: 0 }) as KafkaMessage;

const heartbeat = (partition: number, offset: number, sentAt: number) =>
  at(
    offset,
    encodeHeartbeat(
      { publisher_id: 'p', sent_at: sentAt, interval_ms: 200, partitions: 2 },
      partition,
    ),
  );

const logout = (offset: number, userId: string, sessionId: string) =>
  at(
    offset,
    encodeRevocation(
      buildRevocationEvent({
        issuer: 'https://issuer.test',
        userId,
        sessionId,
        initiatingEntity: 'user',
        reason: 'logout',
        at: T0,
      }),
    ),
  );

interface FakeConsumer {
  groupId: string;
  run: ConsumerRunConfig | undefined;
  seeks: Record<number, string>;
  joined: () => void;
  /** KafkaJS's request-timeout event: a broker did not answer in time. */
  timedOut: () => void;
  disconnected: boolean;
  deliver(partition: number, messages: KafkaMessage[]): Promise<void>;
}

function fakeKafka() {
  const consumers: FakeConsumer[] = [];
  const ok = () => Promise.resolve();
  const kafka = {
    admin: () => ({
      connect: ok,
      disconnect: ok,
      fetchTopicOffsets: () =>
        Promise.resolve(
          [0, 1].map((partition) => ({ partition, offset: '0', high: '0', low: '0' })),
        ),
      fetchTopicOffsetsByTimestamp: () =>
        Promise.resolve([0, 1].map((partition) => ({ partition, offset: '-1' }))),
    }),
    consumer: ({ groupId }: { groupId: string }) => {
      const fake: FakeConsumer = {
        groupId,
        run: undefined,
        seeks: {},
        joined: () => undefined,
        timedOut: () => undefined,
        disconnected: false,
        deliver: async (partition, messages) => {
          if (fake.run?.eachBatch === undefined) throw new Error('not running');
          await fake.run.eachBatch({
            batch: { topic: 't', partition, messages },
            // Even after the disconnect: a batch KafkaJS handed out before it.
            isRunning: () => true,
            isStale: () => false,
            heartbeat: ok,
          } as unknown as EachBatchPayload);
        },
      };
      consumers.push(fake);
      return {
        events: {
          GROUP_JOIN: 'consumer.group_join',
          CRASH: 'consumer.crash',
          REQUEST_TIMEOUT: 'consumer.network.request_timeout',
        },
        on: (event: string, listener: () => void) => {
          if (event === 'consumer.group_join') fake.joined = listener;
          if (event === 'consumer.network.request_timeout') fake.timedOut = listener;
        },
        connect: ok,
        subscribe: ok,
        seek: ({ partition, offset }: { partition: number; offset: string }) => {
          fake.seeks[partition] = offset;
        },
        disconnect: () => {
          fake.disconnected = true;
          return ok();
        },
        run: (config: ConsumerRunConfig) => {
          fake.run = config;
          return ok();
        },
      };
    },
    producer: () => ({ connect: ok, disconnect: ok, send: ok }),
  } as unknown as Kafka;
  return { kafka, consumers };
}

function setup() {
  let now = T0;
  const clock = () => now;
  const { kafka, consumers } = fakeKafka();
  const store = new RevocationStore({ retentionMs: 600_000, now: clock });
  const freshness = new PartitionFreshness({ boundMs: 2 * STALL_MS, now: clock });
  const metrics = new GuardMetrics(new Registry(), {
    store,
    freshness,
    cache: new VerifiedTokenCache({ maxEntries: 10, now: clock }),
  });
  const warnings: string[] = [];
  const consumer = new RevocationConsumer({
    kafka,
    topic: 't',
    groupId: 'g',
    instanceName: 'test',
    replayWindowMs: 600_000,
    fetchMaxWaitMs: 100,
    store,
    freshness,
    metrics,
    logger: { log: () => undefined, warn: (m) => warnings.push(m), error: (m) => warnings.push(m) },
    stallMs: STALL_MS,
    now: clock,
  });
  const revoked = (userId: string, sid: string) =>
    store.check({ sub: userId, sid, iat: T0 / 1000 - 10 }) === 'session_revoked';
  return {
    consumer,
    consumers,
    freshness,
    warnings,
    revoked,
    advance: (ms: number) => (now += ms),
    now: clock,
  };
}

/** Waits (a few watchdog rounds at most) until `condition` holds. */
async function waitUntil(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await sleep(10);
  if (!condition()) throw new Error(`never: ${what}`);
}

describe('RevocationConsumer, stuck on one broker', () => {
  let world: ReturnType<typeof setup>;

  beforeEach(async () => {
    world = setup();
    void world.consumer.start();
    await waitUntil(() => world.consumers[0]?.run !== undefined, 'the first consumer runs');
    world.consumers[0]?.joined();
    const first = world.consumers[0]!;
    await first.deliver(0, [heartbeat(0, 0, world.now())]);
    await first.deliver(1, [heartbeat(1, 0, world.now())]);
    expect(world.freshness.isFresh()).toBe(true);
  });

  afterEach(() => world.consumer.stop());

  it('is replaced when one partition falls behind the others; the new one reads on from the same positions', async () => {
    const first = world.consumers[0]!;
    world.advance(STALL_MS + 1);
    // Partition 0 is read on, partition 1 is not (its leader does not answer).
    await first.deliver(0, [logout(1, 'u0', 's0'), heartbeat(0, 2, world.now())]);
    await waitUntil(() => world.consumers.length === 2, 'a second consumer');
    const second = world.consumers[1]!;
    expect(first.disconnected).toBe(true);
    expect(second.groupId).toBe('g.1');
    expect(world.warnings.join('\n')).toMatch(/partition 1 of t is \d+ ms behind the others/);

    // The replaced consumer's late batch is not applied, and moves no position.
    await first.deliver(1, [logout(1, 'u1', 's1'), heartbeat(1, 2, world.now())]);
    expect(world.revoked('u1', 's1')).toBe(false);
    await waitUntil(() => second.run !== undefined, 'the second consumer runs');
    second.joined();
    expect(second.seeks).toEqual({ 0: '3', 1: '1' });

    // The new one reads partition 1 from where the first stopped: nothing skipped.
    await second.deliver(1, [logout(1, 'u1', 's1'), heartbeat(1, 2, world.now())]);
    expect(world.revoked('u0', 's0')).toBe(true);
    expect(world.revoked('u1', 's1')).toBe(true);
    expect(world.freshness.spreadMs()).toBeLessThanOrEqual(STALL_MS);
    await sleep(3 * Math.min(1_000, STALL_MS / 2));
    world.advance(STALL_MS * 2);
    await sleep(3 * Math.min(1_000, STALL_MS / 2));
    expect(world.consumers).toHaveLength(2);
  });

  it('is left alone when all partitions age together (the publisher sends nothing)', async () => {
    world.advance(10 * STALL_MS);
    await sleep(3 * Math.min(1_000, STALL_MS / 2));
    expect(world.freshness.isFresh()).toBe(false);
    expect(world.consumers).toHaveLength(1);
  });

  it('is replaced when no partition is heard from and a request timed out', async () => {
    const first = world.consumers[0]!;
    first.timedOut();
    await sleep(3 * Math.min(1_000, STALL_MS / 2));
    expect(world.consumers).toHaveLength(1); // the view is fresh: nothing to recover
    world.advance(STALL_MS + 1);
    await waitUntil(() => world.consumers.length === 2, 'a second consumer');
    expect(first.disconnected).toBe(true);
    expect(world.warnings.join('\n')).toMatch(/is silent and a request to Kafka timed out/);
    await waitUntil(() => world.consumers[1]?.run !== undefined, 'the second consumer runs');
    world.consumers[1]?.joined();
    expect(world.consumers[1]?.seeks).toEqual({ 0: '1', 1: '1' });
  });
});
