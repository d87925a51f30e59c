import { decodeMessage, InvalidMessageError, retry, type RevocationEvent } from '@app/contracts';
import type { LoggerService } from '@nestjs/common';
import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import type { SsfMetrics } from '../metrics';
import type { Outgoing, StreamStore } from '../streams/stream-store';

export interface IntakeOptions {
  kafka: Kafka;
  topic: string;
  groupId: string;
  store: StreamStore;
  metrics: SsfMetrics;
  logger: LoggerService;
  /** The SETs (one per stream that wants it) for one revocation read at `topicAt` (ms). */
  setsFor: (event: RevocationEvent, topicAt: number) => Outgoing[];
  /** Called after SETs were queued for these streams. */
  queued: (streamIds: Set<string>) => void;
}

/** Messages turned into SETs and queued in one Redis transaction at most. */
const CHUNK = 200;

/**
 * Reads the revocation topic in a consumer group of its own and queues each revocation's SETs
 * for every stream that wants it. An offset is resolved (and so committed to Kafka, every
 * second) only after its SETs are in Redis, and Redis records per partition the last offset
 * queued, in the same transaction: after a crash the messages since the last commit come
 * again and are skipped, so none is lost and none is queued twice. The commits are not on the
 * delivery path: a restart re-reads at most a second of the topic.
 */
export class RevocationIntake {
  private consumer: Consumer | undefined;
  private joined = false;
  /** Per partition, the last offset queued: Redis's mark, read once after each (re)join. */
  private readonly queuedUpTo = new Map<number, number>();

  constructor(private readonly options: IntakeOptions) {}

  get ready(): boolean {
    return this.joined;
  }

  private readonly stopping = new AbortController();

  /**
   * Joins the group and starts reading; until that works (the topic not provisioned yet, the
   * brokers unreachable) it tries again, with backoff, until `stop`.
   */
  async start(): Promise<void> {
    await retry(() => this.run(), {
      initialMs: 500,
      maxMs: 10_000,
      signal: this.stopping.signal,
      onRetry: ({ error, delayMs }) => {
        this.options.logger.warn(
          `revocation intake cannot start yet (${String(error)}); again in ${delayMs} ms`,
        );
      },
    });
  }

  private async run(): Promise<void> {
    const { kafka, topic, groupId, logger } = this.options;
    const consumer = kafka.consumer({
      groupId,
      maxWaitTimeInMs: 100,
      sessionTimeout: 10_000,
      heartbeatInterval: 1_000,
      rebalanceTimeout: 10_000,
      allowAutoTopicCreation: false,
      retry: { initialRetryTime: 100, maxRetryTime: 2_000, retries: Number.MAX_SAFE_INTEGER },
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, () => {
      this.queuedUpTo.clear();
      this.joined = true;
    });
    consumer.on(consumer.events.CRASH, (event) => {
      this.joined = false;
      logger.error(`revocation consumer crashed: ${String(event.payload.error)}; restarting`);
    });
    try {
      await consumer.connect();
      // A new group starts at the end of the topic: streams exist from now on, and nothing
      // older is owed to them. A known group resumes where it committed.
      await consumer.subscribe({ topic, fromBeginning: false });
    } catch (error) {
      await consumer.disconnect().catch(() => undefined);
      throw error;
    }
    await consumer.run({
      autoCommit: true,
      autoCommitInterval: 1_000,
      eachBatchAutoResolve: false,
      // One user's events share a partition; partitions may go side by side.
      partitionsConsumedConcurrently: 4,
      eachBatch: (payload) => this.onBatch(payload),
    });
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    await this.consumer?.disconnect();
  }

  private async onBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    const { store, topic } = this.options;
    const { partition } = batch;
    const queuedUpTo =
      this.queuedUpTo.get(partition) ?? (await store.queuedOffset(topic, partition));
    const fresh = batch.messages.filter((message) => Number(message.offset) > queuedUpTo);
    for (let start = 0; start < fresh.length; start += CHUNK) {
      if (!payload.isRunning() || payload.isStale()) return;
      const chunk = fresh.slice(start, start + CHUNK);
      const outgoing: Outgoing[] = [];
      for (const message of chunk) outgoing.push(...this.setsOf(message));
      const last = chunk.at(-1)?.offset ?? '-1';
      await store.enqueue(outgoing, { topic, partition, offset: last });
      this.queuedUpTo.set(partition, Number(last));
      if (outgoing.length > 0) this.options.queued(new Set(outgoing.map((o) => o.streamId)));
      payload.resolveOffset(last);
      await payload.heartbeat();
    }
    const last = batch.messages.at(-1)?.offset;
    if (last !== undefined) payload.resolveOffset(last);
    await payload.commitOffsetsIfNecessary();
  }

  private setsOf(message: EachBatchPayload['batch']['messages'][number]): Outgoing[] {
    const { metrics, logger } = this.options;
    try {
      const decoded = decodeMessage(message);
      if (decoded.kind === 'heartbeat') {
        metrics.consumed.inc({ kind: 'heartbeat' });
        return [];
      }
      metrics.consumed.inc({ kind: 'revocation' });
      const sets = this.options.setsFor(decoded.event, Number(message.timestamp));
      if (sets.length > 0) metrics.queued.inc({ event: 'session-revoked' }, sets.length);
      return sets;
    } catch (error) {
      if (!(error instanceof InvalidMessageError)) throw error;
      metrics.consumed.inc({ kind: 'invalid' });
      logger.warn(`skipped a message at offset ${message.offset}: ${error.message}`);
      return [];
    }
  }
}
