import {
  SESSION_REVOKED,
  deadLetterTopic,
  decodeForStore,
  decodeMessage,
  DLQ_REASON_HEADER,
  DLQ_SOURCE_HEADER,
  InvalidMessageError,
  MessageKind,
  retry,
  type BackoffOptions,
  type RevocationStore,
} from '@app/contracts';
import type {
  Admin,
  Consumer,
  ConsumerRunConfig,
  EachBatchPayload,
  Kafka,
  KafkaMessage,
  Producer,
} from 'kafkajs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { PartitionFreshness } from './freshness';
import type { GuardMetrics } from '../guard-metrics';
import type { Logger } from '../logger';
import type { AppliedRevocation } from './revocation-listeners';

/**
 * The most a fetch brings (KafkaJS's default: 10 MiB). KafkaJS decodes a whole fetch into
 * message objects before the first is handled: during a replay, 10 MiB of them outlive the young
 * generation, and the old one grows with their garbage (peak RSS). Smaller fetches die young.
 */
const FETCH_MAX_BYTES = 2 * 1024 * 1024;

/** Waits between attempts to read the topic or join the group while Kafka is unreachable. */
const START_BACKOFF: BackoffOptions = { initialMs: 100, maxMs: 2_000 };

export interface RevocationConsumerOptions {
  kafka: Kafka;
  topic: string;
  /** Unique to this process: every instance must receive every event. */
  groupId: string;
  /** Names this instance on dead letters (`dlq-source`). */
  instanceName: string;
  /** How far back to replay on start: the store's retention (longest token lifetime + tolerance). */
  replayWindowMs: number;
  /** Longest time the broker holds a fetch while there is nothing new. */
  fetchMaxWaitMs: number;
  store: RevocationStore;
  freshness: PartitionFreshness;
  metrics: GuardMetrics;
  logger: Logger;
  /** Each revocation applied after the start: not those of the replay, never heartbeats. */
  onRevocation?: (applied: AppliedRevocation) => void;
  now?: () => number;
}

export interface ReplayProgress {
  done: boolean;
  /** Messages read so far during the replay. */
  read: number;
  /** Messages the replay has to read (known once the end offsets were fetched). */
  total: number | undefined;
  durationMs: number | undefined;
}

/**
 * Reads the revocation topic into the store. Every instance is the only member of its own
 * consumer group, so it is assigned every partition and receives every event. Offsets are
 * never committed: on start it seeks each partition to the first message of the replay window
 * and reads to the end offsets seen at start before `ready` resolves; after a rejoin (broker
 * restart, coordinator change) it seeks back to where it was, so nothing in between is skipped.
 */
export class RevocationConsumer {
  private readonly options: RevocationConsumerOptions;
  private admin: Admin | undefined;
  private consumer: Consumer | undefined;
  private producer: Producer | undefined;
  /** Next offset to read, per partition: where to seek after a rejoin. */
  private readonly position = new Map<number, string>();
  /** Per partition still being replayed: the offset at which the replay of it is complete. */
  private readonly replayEnds = new Map<number, bigint>();
  private replayRead = 0;
  private replayTotal: number | undefined;
  private replayStartedAt = 0;
  private replayDurationMs: number | undefined;
  private resolveReplayed!: () => void;
  /** Resolves once every partition was read up to its end offset at start. */
  readonly replayed = new Promise<void>((resolve) => (this.resolveReplayed = resolve));
  private stopped = false;
  /** Aborted by `stop`: ends a start-up retry at once, mid-wait too. */
  private readonly stopping = new AbortController();
  /** How many partitions the topic has, as far as this consumer knows. */
  private partitionCount = 0;
  private readonly runConfig: ConsumerRunConfig = {
    autoCommit: false,
    eachBatchAutoResolve: true,
    partitionsConsumedConcurrently: 1,
    eachBatch: (payload) => this.onBatch(payload),
  };
  private rejoining: Promise<void> | undefined;

  constructor(options: RevocationConsumerOptions) {
    this.options = options;
  }

  progress(): ReplayProgress {
    return {
      done: this.replayDurationMs !== undefined,
      read: this.replayRead,
      total: this.replayTotal,
      durationMs: this.replayDurationMs,
    };
  }

  /** Starts consuming; retries in the background until the topic exists and answers. */
  async start(): Promise<void> {
    const { kafka, topic, groupId, fetchMaxWaitMs, logger } = this.options;
    this.replayStartedAt = this.now();
    this.admin = kafka.admin();
    const partitions = await this.retrying('read the topic', () => this.planReplay());
    await this.admin.disconnect(); // needed only to plan the replay
    this.partitionCount = partitions.length;
    this.options.freshness.track(partitions);
    if (this.stopped) return;
    this.consumer = kafka.consumer({
      groupId,
      maxWaitTimeInMs: fetchMaxWaitMs,
      minBytes: 1,
      maxBytes: FETCH_MAX_BYTES,
      sessionTimeout: 10_000,
      heartbeatInterval: 1_000,
      rebalanceTimeout: 10_000,
      allowAutoTopicCreation: false,
      retry: { initialRetryTime: 100, maxRetryTime: 2_000, retries: 10 },
      // Partitions added to the topic are announced by heartbeats; this is the fallback.
      metadataMaxAge: 30_000,
    });
    this.consumer.on(this.consumer.events.GROUP_JOIN, () => {
      this.seekToPosition();
    });
    this.consumer.on(this.consumer.events.CRASH, (event) => {
      logger.error(`revocation consumer crashed: ${String(event.payload.error)}; restarting`);
    });
    await this.retrying('join the consumer group', async () => {
      await this.consumer?.connect();
      // Where a partition is read from is always our own seek; `fromBeginning` only decides
      // where to go if that offset is gone from the log (out of range): the oldest, not the newest.
      await this.consumer?.subscribe({ topics: [topic], fromBeginning: true });
    });
    // `run` asks for the topic's metadata first, and fails when the broker has not loaded it
    // yet (KafkaJSTopicMetadataNotLoaded, seen on a loaded machine): retried like the join.
    const consumer = this.consumer;
    await this.retrying('start reading the topic', () => consumer.run(this.runConfig));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.abort();
    await this.rejoining;
    await Promise.allSettled([
      this.consumer?.disconnect(),
      this.producer?.disconnect(),
      this.admin?.disconnect(),
    ]);
  }

  /** Finds each partition's first offset in the window and its end offset now; returns the partitions. */
  private async planReplay(): Promise<number[]> {
    const { topic, replayWindowMs } = this.options;
    const admin = this.admin;
    if (!admin) throw new Error('not started');
    await admin.connect();
    const ends = await admin.fetchTopicOffsets(topic);
    const starts = await admin.fetchTopicOffsetsByTimestamp(topic, this.now() - replayWindowMs);
    let total = 0;
    for (const { partition, high } of ends) {
      const start = starts.find((entry) => entry.partition === partition)?.offset ?? high;
      const from = BigInt(start === '-1' ? high : start);
      this.position.set(partition, from.toString());
      const end = BigInt(high);
      if (from < end) {
        this.replayEnds.set(partition, end);
        total += Number(end - from);
      }
    }
    this.replayTotal = total;
    this.options.logger.log(
      `replaying ${total} messages of the last ${Math.round(replayWindowMs / 1000)} s from ${ends.length} partitions of ${topic}`,
    );
    this.completeReplayIfDone();
    return ends.map((entry) => entry.partition);
  }

  private seekToPosition(): void {
    for (const [partition, offset] of this.position)
      this.consumer?.seek({ topic: this.options.topic, partition, offset });
  }

  /**
   * Handles a batch of one partition, message after message. The replay reads up to millions of
   * them before the instance is ready, so the per-message path is synchronous (only parking an
   * invalid message waits), and the counters and the position are updated once per batch.
   */
  private async onBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    const partition = batch.partition;
    const { messages } = batch;
    const tally = new BatchTally();
    const replayEnd = this.replayEnds.get(partition);
    // The messages before the replay end offset are history; in most batches of the replay
    // that is every one of them, told by the last alone.
    const last = messages.at(-1);
    const allHistory =
      replayEnd !== undefined && last !== undefined && BigInt(last.offset) < replayEnd;
    const interrupted = () => !payload.isRunning() || payload.isStale();
    let handled: KafkaMessage | undefined;
    let history = 0;
    // Asked before each message that may follow a wait (the start, a parking) or a listener (a
    // live message): between two messages of history nothing else runs that could stop or seek.
    let ask = true;
    try {
      for (const message of messages) {
        const isHistory =
          allHistory || (replayEnd !== undefined && BigInt(message.offset) < replayEnd);
        if ((ask || !isHistory) && interrupted()) return;
        const parking = this.handle(partition, message, isHistory, tally);
        ask = parking !== undefined;
        if (parking) await parking;
        handled = message;
        if (isHistory) history += 1;
      }
    } finally {
      tally.countInto(this.options.metrics);
      if (handled) this.handledUpTo(partition, handled, history);
    }
    await payload.heartbeat();
  }

  /** Moves the partition's position past `message`; completes its replay when it reached the end. */
  private handledUpTo(partition: number, message: KafkaMessage, history: number): void {
    const next = BigInt(message.offset) + 1n;
    this.position.set(partition, next.toString());
    const end = this.replayEnds.get(partition);
    if (end === undefined) return;
    this.replayRead += history;
    if (next >= end) {
      this.replayEnds.delete(partition);
      this.completeReplayIfDone();
    }
  }

  /**
   * Applies one message: synchronously, unless it fails the contract (then the promise of its
   * parking). `isHistory`: read by the replay, before the partition's end offset at start; of
   * that, only what the store keeps is decoded (decodeForStore: exactly as strict).
   */
  private handle(
    partition: number,
    message: KafkaMessage,
    isHistory: boolean,
    tally: BatchTally,
  ): Promise<void> | undefined {
    const { store, freshness } = this.options;
    let decoded;
    try {
      decoded = isHistory ? decodeForStore(message) : decodeMessage(message);
    } catch (error) {
      if (!(error instanceof InvalidMessageError)) throw error;
      this.options.metrics.invalidMessages.inc();
      return this.park(partition, message, error.message);
    }
    if (decoded.kind === MessageKind.Heartbeat) {
      if ('partitions' in decoded.heartbeat) this.followPartitions(decoded.heartbeat.partitions);
      freshness.record(partition, decoded.heartbeat.sent_at);
      tally.heartbeats += 1;
      return undefined;
    }
    if ('userId' in decoded) {
      tally.count(store.applyRevoked(decoded));
      return undefined;
    }
    const changed = store.apply(decoded.event);
    tally.count(changed);
    this.options.onRevocation?.({
      event: decoded.event,
      revoked: decoded.event.events[SESSION_REVOKED],
      appliedAt: this.now(),
      changed,
    });
    return undefined;
  }

  /**
   * Sends a message that fails the contract, unchanged, to the dead-letter topic with why and
   * where from; consumption goes on either way. Every instance parks what it reads, so a
   * dead letter may appear once per instance: `dlq-source` names the instance and the
   * message's partition and offset, to tell copies apart.
   */
  private async park(partition: number, message: KafkaMessage, reason: string): Promise<void> {
    const { kafka, topic, instanceName, logger } = this.options;
    const source = `${instanceName} ${topic}/${partition}@${message.offset}`;
    logger.warn(`parking an invalid message (${source}): ${reason}`);
    try {
      this.producer ??= kafka.producer({ allowAutoTopicCreation: false });
      await this.producer.connect();
      await this.producer.send({
        topic: deadLetterTopic(topic),
        acks: -1,
        messages: [
          {
            key: message.key,
            value: message.value,
            headers: {
              ...message.headers,
              [DLQ_REASON_HEADER]: reason,
              [DLQ_SOURCE_HEADER]: source,
            },
          },
        ],
      });
    } catch (error) {
      logger.error(
        `could not park ${source} in the dead-letter topic: ${(error as Error).message}`,
      );
    }
  }

  /**
   * A heartbeat says the topic has more partitions than this consumer reads (partitions were
   * added while it ran). From now on the view is stale until a heartbeat was read on each new
   * partition too; and the consumer rejoins its group to be assigned them (it keeps its place
   * on the others; a new partition is read from its start).
   */
  private followPartitions(count: number): void {
    if (count <= this.partitionCount || this.stopped) return;
    const { freshness, logger } = this.options;
    logger.log(
      `the topic has ${count} partitions now (was ${this.partitionCount}); reading them all`,
    );
    this.partitionCount = count;
    freshness.track(Array.from({ length: count }, (_, partition) => partition));
    // Not from within the batch being handled: stopping waits for it to finish.
    const previous = this.rejoining ?? Promise.resolve();
    this.rejoining = previous
      .then(() => sleep(0))
      .then(async () => {
        if (this.stopped || !this.consumer) return;
        await this.consumer.stop();
        await this.consumer.run(this.runConfig);
      })
      .catch((error: unknown) => {
        logger.error(`could not rejoin to read the new partitions: ${(error as Error).message}`);
      });
  }

  private completeReplayIfDone(): void {
    if (this.replayEnds.size > 0 || this.replayDurationMs !== undefined) return;
    this.replayDurationMs = this.now() - this.replayStartedAt;
    this.options.logger.log(
      `replay complete: ${this.replayRead} messages in ${this.replayDurationMs} ms`,
    );
    this.resolveReplayed();
  }

  /** Retries `attempt` until it works; rejects with its last error once stopped. */
  private retrying<T>(what: string, attempt: () => Promise<T>): Promise<T> {
    return retry(attempt, {
      ...START_BACKOFF,
      signal: this.stopping.signal,
      onRetry: ({ attempt: tries, error }) => {
        if (tries === 1 || tries % 10 === 0)
          this.options.logger.warn(
            `cannot ${what} yet (${(error as Error).message}); retrying (attempt ${tries})`,
          );
      },
    });
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }
}

/** What a batch's messages did, counted into the metrics once per batch (not per message). */
class BatchTally {
  heartbeats = 0;
  applied = 0;
  unchanged = 0;

  count(changed: boolean): void {
    if (changed) this.applied += 1;
    else this.unchanged += 1;
  }

  countInto({ eventsApplied }: GuardMetrics): void {
    if (this.heartbeats > 0)
      eventsApplied.inc({ kind: 'heartbeat', result: 'applied' }, this.heartbeats);
    if (this.applied > 0)
      eventsApplied.inc({ kind: 'revocation', result: 'applied' }, this.applied);
    if (this.unchanged > 0)
      eventsApplied.inc({ kind: 'revocation', result: 'unchanged' }, this.unchanged);
  }
}
