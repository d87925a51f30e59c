import {
  applyInPlace,
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
import { readHistory, type RawRecord } from './history-reader';
import type { GuardMetrics } from '../guard-metrics';
import type { Logger } from '../logger';
import type { AppliedRevocation } from './revocation-listeners';

/**
 * The most a fetch brings (KafkaJS's default: 10 MiB). KafkaJS decodes a whole fetch into
 * message objects before the first is handled: during a replay, 10 MiB of them outlive the young
 * generation, and the old one grows with their garbage (peak RSS). Smaller fetches die young.
 */
const FETCH_MAX_BYTES = 2 * 1024 * 1024;

/**
 * The direct reading of the history (history-reader.ts): the most one answer brings, and of one
 * partition. Larger answers did not read faster and held more memory.
 */
const HISTORY_FETCH_MAX_BYTES = 4 * 1024 * 1024;
const HISTORY_PARTITION_MAX_BYTES = 1024 * 1024;

/** Waits between attempts to read the topic or join the group while Kafka is unreachable. */
const START_BACKOFF: BackoffOptions = { initialMs: 100, maxMs: 2_000 };

/** The longest wait between two restarts of a consumer that stays stuck (see `watch`). */
const MAX_RESTART_INTERVAL_MS = 30_000;

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
  /**
   * Whether anything listens to `onRevocation` now (default: whether it is set). While nothing
   * does, a live message is decoded only as far as the store needs, as the replay's are: the
   * instance's cost per event during a revocation storm (bench/storm.ts).
   */
  listening?: () => boolean;
  /**
   * A partition heard from this much later than another (ms, see `PartitionFreshness.spreadMs`),
   * or none heard from for this long after a request timed out, means the consumer is stuck on a
   * broker that does not answer: it is replaced by a new one, which reads on from where this one
   * was (see `watch`). Unset: never.
   */
  stallMs?: number;
  /**
   * Read the replay's history below KafkaJS's consumer (history-reader.ts; default true); the
   * consumer reads whatever that leaves. False: the consumer reads all of it.
   */
  directReplay?: boolean;
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
 *
 * A broker that stops answering without closing its connections (paused, or behind a network
 * partition) holds KafkaJS's consumer up for as long as it does: the fetch to it, and the
 * group's heartbeat when it is the coordinator, time out again and again, on metadata that
 * still names it, and every other partition waits in between. So when some partitions fall
 * `stallMs` behind the others, or none was heard from for as long after a request timed out,
 * the consumer is replaced: the old one is abandoned (its batches are ignored from then on; it
 * disconnects in the background), and a new one, in a group of its own, starts from the
 * positions kept here, through a seed broker that may answer.
 */
export class RevocationConsumer {
  private readonly options: RevocationConsumerOptions;
  private admin: Admin | undefined;
  private consumer: Consumer | undefined;
  private producer: Producer | undefined;
  /** Next offset to read, per partition: where to seek after a rejoin. */
  private readonly position = new Map<number, string>();
  /** Which consumer is the current one: each replacement has the next number. */
  private incarnation = 0;
  /** Aborted when the current consumer is replaced: ends its start-up retries. */
  private replacing = new AbortController();
  /** The batch being applied, settled once its messages were applied or given up. */
  private applying: Promise<void> | undefined;
  /** Replaced consumers still disconnecting. */
  private readonly abandoned = new Set<Promise<void>>();
  private watchdog: NodeJS.Timeout | undefined;
  /** When the consumer was last replaced, and how many times in a row (while stuck). */
  private lastRestartAt = -Infinity;
  private restartStreak = 0;
  /** A request of the current consumer timed out: some broker stopped answering. */
  private timedOut = false;
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
    const { kafka, stallMs } = this.options;
    this.replayStartedAt = this.now();
    this.admin = kafka.admin();
    const partitions = await this.retrying('read the topic', () => this.planReplay());
    await this.admin.disconnect(); // needed only to plan the replay
    this.partitionCount = partitions.length;
    this.options.freshness.track(partitions);
    if (this.stopped) return;
    if (stallMs !== undefined) {
      this.watchdog = setInterval(
        () => {
          this.watch(stallMs);
        },
        Math.min(1_000, stallMs / 2),
      );
      this.watchdog.unref();
    }
    // The consumer joins its group meanwhile, and reads on from where the direct reading ended.
    const history = this.options.directReplay === false ? undefined : this.readHistoryDirectly();
    await this.startConsumer(history);
  }

  /**
   * Reads what it can of the replay's history below KafkaJS's consumer (history-reader.ts),
   * applying it as the consumer would; the consumer reads the rest from the positions reached.
   * Never rejects.
   */
  private async readHistoryDirectly(): Promise<void> {
    const { kafka, topic, metrics, logger } = this.options;
    if (this.replayEnds.size === 0) return;
    const ranges = [...this.replayEnds].map(([partition, end]) => ({
      partition,
      from: Number(this.position.get(partition)),
      end: Number(end),
    }));
    const tally = new BatchTally();
    const leftOver = await readHistory({
      kafka,
      topic,
      ranges,
      maxBytes: HISTORY_FETCH_MAX_BYTES,
      partitionMaxBytes: HISTORY_PARTITION_MAX_BYTES,
      onRecord: (partition, record) => this.handleRecord(partition, record, tally),
      onProgress: (partition, next, read) => {
        tally.countInto(metrics);
        this.handledUpTo(partition, BigInt(next), read);
      },
      shouldStop: () => this.stopped,
    });
    const unread = [...leftOver].filter(([partition]) => this.replayEnds.has(partition));
    if (unread.length > 0 && !this.stopped)
      logger.warn(
        `the consumer reads the rest of the history of ${unread.length} partition(s): ` +
          unread.map(([partition, why]) => `${partition} (${why})`).join(', '),
      );
  }

  /** `handle` for a record of the direct reading: a canonical revocation applied in place. */
  private handleRecord(
    partition: number,
    record: RawRecord,
    tally: BatchTally,
  ): Promise<void> | undefined {
    const changed = applyInPlace(this.options.store, record);
    if (changed === undefined) return this.handle(partition, record.message(), true, tally);
    tally.count(changed);
    return undefined;
  }

  /**
   * Makes the current incarnation's consumer, joins its group and runs it; once `before` (the
   * direct reading of the history) settled, if given.
   */
  private async startConsumer(before?: Promise<void>): Promise<void> {
    const { kafka, topic, groupId, fetchMaxWaitMs, logger } = this.options;
    const incarnation = this.incarnation;
    const signal = this.replacing.signal;
    const consumer = kafka.consumer({
      // Each its own group: a new member of the old group would wait for the old one to leave
      // or expire, and the old one may be stuck on the broker that does not answer.
      groupId: incarnation === 0 ? groupId : `${groupId}.${incarnation}`,
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
    this.consumer = consumer;
    const current = () => this.incarnation === incarnation;
    consumer.on(consumer.events.GROUP_JOIN, () => {
      if (current()) this.seekToPosition(consumer);
    });
    consumer.on(consumer.events.REQUEST_TIMEOUT, () => {
      if (current()) this.timedOut = true;
    });
    consumer.on(consumer.events.CRASH, (event) => {
      if (current())
        logger.error(`revocation consumer crashed: ${String(event.payload.error)}; restarting`);
    });
    await this.retrying(
      'join the consumer group',
      async () => {
        await consumer.connect();
        // Where a partition is read from is always our own seek; `fromBeginning` only decides
        // where to go if that offset is gone from the log (out of range): the oldest, not the newest.
        await consumer.subscribe({ topics: [topic], fromBeginning: true });
      },
      signal,
    );
    await before;
    // `run` asks for the topic's metadata first, and fails when the broker has not loaded it
    // yet (KafkaJSTopicMetadataNotLoaded, seen on a loaded machine): retried like the join.
    await this.retrying('start reading the topic', () => consumer.run(this.runConfig()), signal);
  }

  /** How the current incarnation's consumer runs: batches of another are ignored. */
  private runConfig(): ConsumerRunConfig {
    const incarnation = this.incarnation;
    return {
      autoCommit: false,
      eachBatchAutoResolve: true,
      partitionsConsumedConcurrently: 1,
      eachBatch: (payload) => this.onBatch(payload, incarnation),
    };
  }

  /**
   * Replaces the consumer when it is stuck (not during the replay, which reads old
   * heartbeats): when some partitions fell `stallMs` behind the others, or when none was heard
   * from for `stallMs` and one of its requests timed out (a broker stopped answering: when it
   * is the group's coordinator, every partition waits on it). Partitions ageing together
   * without a timeout (no publisher, or brokers refusing connections) replace nothing. While
   * stuck, it is replaced again after `stallMs`, then after twice as long each time (at most
   * 30 s): a replacement may come before the cluster gave the silent broker's partitions to
   * other leaders, or start from the silent broker as its seed.
   */
  private watch(stallMs: number): void {
    if (this.stopped || this.replayDurationMs === undefined) return;
    const { freshness } = this.options;
    const spread = freshness.spreadMs();
    const { stalestPartition, stalestAgeMs: silentMs } = freshness.report();
    const stuck = spread > stallMs || (this.timedOut && silentMs > stallMs);
    if (!stuck) {
      // The streak (and the wait between replacements) ends once the view is fresh.
      if (silentMs <= stallMs) this.restartStreak = 0;
      return;
    }
    const now = this.now();
    const wait = Math.min(
      MAX_RESTART_INTERVAL_MS,
      stallMs * 2 ** Math.max(0, this.restartStreak - 1),
    );
    if (now - this.lastRestartAt < wait) return;
    this.restartStreak += 1;
    this.lastRestartAt = now;
    const heard = Number.isFinite(silentMs) ? `${Math.round(silentMs)} ms ago` : 'never';
    const why =
      spread > stallMs
        ? `is ${spread === Infinity ? 'silent' : `${Math.round(spread)} ms`} behind the others`
        : 'is silent and a request to Kafka timed out';
    this.options.logger.warn(
      `partition ${stalestPartition} of ${this.options.topic} ${why} (last heard ${heard}): ` +
        `replacing the consumer (${this.restartStreak} in a row); the new one reads on from the same positions`,
    );
    this.options.metrics.consumerRestarts.inc();
    void this.replaceConsumer(); // never rejects
  }

  /** Abandons the current consumer and starts the next one from the positions kept here. */
  private async replaceConsumer(): Promise<void> {
    const old = this.consumer;
    this.incarnation += 1;
    this.timedOut = false;
    this.replacing.abort();
    const replacing = new AbortController();
    this.replacing = replacing;
    if (old) {
      // May take a while (requests to the silent broker time out first): in the background.
      const leaving: Promise<void> = old
        .disconnect()
        .catch(() => undefined)
        .finally(() => this.abandoned.delete(leaving));
      this.abandoned.add(leaving);
    }
    // A batch of the old consumer still being applied (only a parking waits) stops at its next
    // message: then the positions are final, and the new consumer seeks to them.
    await this.applying;
    if (this.stopped || replacing.signal.aborted) return;
    await this.startConsumer().catch((error: unknown) => {
      // Stopped, or replaced in turn: the next consumer (if any) carries on.
      if (!this.stopped && !replacing.signal.aborted)
        this.options.logger.error(`could not start the new consumer: ${(error as Error).message}`);
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.abort();
    clearInterval(this.watchdog);
    await this.rejoining;
    // A replacement still joining ends with the disconnect below (its retries are aborted).
    await Promise.allSettled([
      this.consumer?.disconnect(),
      this.producer?.disconnect(),
      this.admin?.disconnect(),
      ...this.abandoned,
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

  private seekToPosition(consumer: Consumer): void {
    for (const [partition, offset] of this.position)
      consumer.seek({ topic: this.options.topic, partition, offset });
  }

  /**
   * Handles a batch of one partition, message after message. The replay reads up to millions of
   * them before the instance is ready, so the per-message path is synchronous (only parking an
   * invalid message waits), and the counters and the position are updated once per batch.
   */
  private async onBatch(payload: EachBatchPayload, incarnation: number): Promise<void> {
    // A replaced consumer's batch: the new consumer reads it again from the positions.
    if (incarnation !== this.incarnation) return;
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
    const interrupted = () =>
      incarnation !== this.incarnation || !payload.isRunning() || payload.isStale();
    let handled: KafkaMessage | undefined;
    let history = 0;
    // Asked before each message that may follow a wait (the start, a parking) or a listener (a
    // live message): between two messages of history nothing else runs that could stop or seek.
    let ask = true;
    let applied!: () => void;
    this.applying = new Promise<void>((resolve) => (applied = resolve));
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
      if (handled) this.handledUpTo(partition, BigInt(handled.offset) + 1n, history);
      applied();
    }
    await payload.heartbeat();
  }

  /**
   * Moves the partition's position to `next` (`history` more messages of the replay read);
   * completes its replay when it reached the end.
   */
  private handledUpTo(partition: number, next: bigint, history: number): void {
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
   * that, and of a live message while no one listens, only what the store keeps is decoded
   * (decodeForStore: exactly as strict).
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
      decoded = isHistory || !this.listening() ? decodeForStore(message) : decodeMessage(message);
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
    const incarnation = this.incarnation;
    const consumer = this.consumer;
    this.rejoining = previous
      .then(() => sleep(0))
      .then(async () => {
        // A consumer that replaced this one meanwhile is assigned every partition anyway.
        if (this.stopped || !consumer || incarnation !== this.incarnation) return;
        await consumer.stop();
        await consumer.run(this.runConfig());
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

  /** Retries `attempt` until it works; rejects with its last error once stopped (or `until`). */
  private retrying<T>(what: string, attempt: () => Promise<T>, until?: AbortSignal): Promise<T> {
    return retry(attempt, {
      ...START_BACKOFF,
      signal: until ? AbortSignal.any([this.stopping.signal, until]) : this.stopping.signal,
      onRetry: ({ attempt: tries, error }) => {
        if (tries === 1 || tries % 10 === 0)
          this.options.logger.warn(
            `cannot ${what} yet (${(error as Error).message}); retrying (attempt ${tries})`,
          );
      },
    });
  }

  private listening(): boolean {
    const { listening, onRevocation } = this.options;
    return listening ? listening() : onRevocation !== undefined;
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

  /** Adds the counts to the metrics, and starts again from zero. */
  countInto({ eventsApplied }: GuardMetrics): void {
    if (this.heartbeats > 0)
      eventsApplied.inc({ kind: 'heartbeat', result: 'applied' }, this.heartbeats);
    if (this.applied > 0)
      eventsApplied.inc({ kind: 'revocation', result: 'applied' }, this.applied);
    if (this.unchanged > 0)
      eventsApplied.inc({ kind: 'revocation', result: 'unchanged' }, this.unchanged);
    this.heartbeats = 0;
    this.applied = 0;
    this.unchanged = 0;
  }
}
