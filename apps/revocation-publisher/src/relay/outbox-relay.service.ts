import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import {
  backoffDelay,
  DLQ_REASON_HEADER,
  DLQ_SOURCE_HEADER,
  retry,
  type BackoffOptions,
} from '@app/contracts';
import { setTimeout as sleep } from 'node:timers/promises';
import { entryTime, type OutboxEntry } from '../outbox/outbox-entry';
import { OutboxStore } from '../outbox/outbox.store';
import { PublisherMetrics } from '../publisher.metrics';
import { REVOCATION_SINK, type OutgoingMessage, type RevocationSink } from './revocation-sink';
import { toMessages } from './to-messages';
import { outboxSettings, type OutboxSettings } from '../publisher.settings';

const START_OF_STREAM = '0-0';
/** How often the relay re-reads its pending entries even when nothing failed: a safety net. */
const PENDING_RECHECK_MS = 30_000;

/** What goes to the broker in one request: events and dead letters, in outbox order. */
interface Chunk {
  events: OutgoingMessage[];
  deadLetters: OutgoingMessage[];
}

const sizeOf = (message: OutgoingMessage): number =>
  (message.key?.length ?? 0) +
  message.value.length +
  Object.entries(message.headers).reduce(
    (sum, [name, value]) => sum + name.length + value.length,
    0,
  );

/** Splits messages, in order, into requests of at most `maxBytes` (one message at least). */
function chunksOf(messages: OutgoingMessage[], maxBytes: number): OutgoingMessage[][] {
  const chunks: OutgoingMessage[][] = [];
  let current: OutgoingMessage[] = [];
  let bytes = 0;
  for (const message of messages) {
    const size = sizeOf(message);
    if (current.length > 0 && bytes + size > maxBytes) {
      chunks.push(current);
      [current, bytes] = [[], 0];
    }
    current.push(message);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/**
 * Relays the outbox to Kafka, at least once and in order per shard (hence per user):
 * read a batch, publish it until the broker acknowledges it, then acknowledge and delete
 * the entries. A shard is relayed only by the holder of its lease; a new holder first
 * claims the entries its predecessor left pending, oldest first.
 *
 * Redis may act on a command whose reply the client never sees (a timeout after a pause, a
 * dropped connection): a read may have delivered entries that only sit pending. So after any
 * failure, and every {@link PENDING_RECHECK_MS} anyway, the relay claims its shards' pending
 * entries again, oldest first, before it reads new ones.
 *
 * What heartbeats vouch for ({@link vouchedAt}): the start of the last read that returned
 * everything there was (no shard's batch full, nothing pending to claim), once what it read
 * is on the topic. Every entry appended before that instant has been published.
 */
@Injectable()
export class OutboxRelay implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(OutboxRelay.name);
  private running = false;
  private loop: Promise<void> | undefined;
  private leaseTimer: NodeJS.Timeout | undefined;
  private leaseRound: Promise<void> | undefined;
  private readonly stop = new AbortController();
  private readonly owned = new Set<number>();
  /** Shards just taken over, with the cursor of their pending-entry claim. */
  private readonly draining = new Map<number, string>();
  private groupsReady = false;
  private lastPendingCheckAt = 0;
  /** When each owned shard's lease was last confirmed by Redis. */
  private readonly confirmedAt = new Map<number, number>();
  /** The instant heartbeats vouch for, and the one the batch in hand will vouch for once published. */
  private vouched: number | undefined;
  private pendingVouch: number | undefined;
  /** When the relay loop last went round without an error (readiness). */
  private lastHealthyAt = Date.now();

  constructor(
    private readonly outbox: OutboxStore,
    @Inject(REVOCATION_SINK) private readonly sink: RevocationSink,
    private readonly metrics: PublisherMetrics,
    @Inject(outboxSettings.KEY) private readonly settings: OutboxSettings,
  ) {}

  onApplicationBootstrap(): void {
    this.running = true;
    this.leaseTimer = setInterval(
      () => void this.renewLeases(),
      Math.floor(this.settings.leaseMs / 3),
    );
    this.loop = this.run();
  }

  async onApplicationShutdown(): Promise<void> {
    this.running = false;
    clearInterval(this.leaseTimer);
    this.stop.abort();
    await this.loop;
    await this.leaseRound;
    // Hand the shards over at once instead of after the lease runs out.
    await Promise.allSettled([...this.owned].map((shard) => this.outbox.release(shard)));
    this.owned.clear();
  }

  /**
   * The instant heartbeats may vouch for: every entry of this instance's shards appended
   * before it is on the topic. Undefined while this instance relays no shard (a standby
   * vouches for nothing) or has not read everything once yet.
   */
  vouchedAt(): number | undefined {
    return this.owned.size > 0 ? this.vouched : undefined;
  }

  /** For readiness: how long since the relay loop last went round without an error. */
  healthyAgoMs(): number {
    return Date.now() - this.lastHealthyAt;
  }

  ownedShards(): number[] {
    return [...this.owned].sort((a, b) => a - b);
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (this.running) {
      try {
        if (!this.groupsReady) {
          await this.outbox.ensureGroups();
          this.groupsReady = true;
          await this.renewLeases();
        }
        const batch = await this.nextBatch();
        const relayed = batch.length === 0 || (await this.relay(batch));
        if (relayed && this.pendingVouch !== undefined) this.vouched = this.pendingVouch;
        this.pendingVouch = undefined;
        this.lastHealthyAt = Date.now();
        if (failures > 0) this.logger.log('outbox reachable again');
        failures = 0;
      } catch (error) {
        failures += 1;
        this.pendingVouch = undefined;
        if (failures === 1) this.logger.error(`outbox read failed, retrying: ${message(error)}`);
        // The failed command may have run: entries it delivered wait in the pending list.
        this.recheckPending();
        // The consumer group is gone (a Redis restore, a flush): create it again, from the
        // start of each stream, which holds only entries not yet relayed.
        if (message(error).includes('NOGROUP')) this.groupsReady = false;
        await this.pause(backoffDelay(failures, this.backoff()));
      }
    }
  }

  /** Claims every owned shard's pending entries again before reading new ones. */
  private recheckPending(): void {
    for (const shard of this.owned) this.draining.set(shard, START_OF_STREAM);
    this.lastPendingCheckAt = Date.now();
  }

  private async renewLeases(): Promise<void> {
    if (!this.groupsReady || this.leaseRound) return;
    this.leaseRound = (async () => {
      for (let shard = 0; shard < this.settings.layout.shards && this.running; shard += 1) {
        const result = await this.outbox
          .lease(shard, this.settings.leaseMs)
          .catch(() => 'unknown' as const);
        if (result === 'acquired' || result === 'renewed') {
          // Newly ours (or still ours from before a restart): entries may be pending from the
          // previous holder, so claim those before reading new ones.
          if (!this.owned.has(shard)) this.draining.set(shard, START_OF_STREAM);
          this.owned.add(shard);
          this.confirmedAt.set(shard, Date.now());
        } else if (result === 'lost' || !this.stillLeased(shard)) {
          // Lost, or unconfirmed for so long that the lease may have run out (the renewal may
          // or may not have happened): stop relaying it until Redis confirms it is ours.
          this.owned.delete(shard);
          this.draining.delete(shard);
        }
      }
      this.metrics.ownedShards.set(this.owned.size);
    })().finally(() => {
      this.leaseRound = undefined;
    });
    await this.leaseRound;
  }

  /** Whether the shard's lease was confirmed recently enough that it cannot have run out. */
  private stillLeased(shard: number): boolean {
    const confirmed = this.confirmedAt.get(shard) ?? -Infinity;
    return Date.now() - confirmed < (this.settings.leaseMs * 2) / 3;
  }

  private async nextBatch(): Promise<OutboxEntry[]> {
    if (Date.now() - this.lastPendingCheckAt >= PENDING_RECHECK_MS) this.recheckPending();
    const [takeover] = this.draining;
    if (takeover) {
      const [shard, cursor] = takeover;
      const { next, entries } = await this.outbox.claimPending(shard, cursor, this.settings.batch);
      if (next === START_OF_STREAM) {
        this.draining.delete(shard);
        await this.outbox.forgetIdleConsumers(shard, this.settings.leaseMs);
      } else this.draining.set(shard, next);
      if (entries.length > 0)
        this.logger.warn(`took over ${entries.length} pending entries of shard ${shard}`);
      return entries;
    }
    const active = [...this.owned];
    if (active.length === 0) {
      await this.pause(Math.floor(this.settings.leaseMs / 3));
      return [];
    }
    const readAt = Date.now();
    const entries = await this.outbox.readNew(active, this.settings.batch, this.settings.blockMs);
    // Everything appended before `readAt` was handed out by now, unless a shard's batch was
    // full (more may wait behind it).
    const perShard = new Map<number, number>();
    for (const entry of entries) perShard.set(entry.shard, (perShard.get(entry.shard) ?? 0) + 1);
    const complete = [...perShard.values()].every((count) => count < this.settings.batch);
    if (complete && this.draining.size === 0) this.pendingVouch = readAt;
    if (entries.length > 0 && entries.length < this.settings.batch && this.settings.lingerMs > 0) {
      // A short linger lets a burst leave as one batch; one event waits at most this long.
      await this.pause(this.settings.lingerMs);
      entries.push(...(await this.outbox.readNew(active, this.settings.batch - entries.length, 0)));
    }
    return entries;
  }

  /** Publishes a batch and acknowledges its entries; false when stopped before the end. */
  private async relay(batch: OutboxEntry[]): Promise<boolean> {
    const { events, deadLetters } = toMessages(batch);
    const parked = [...deadLetters];
    // Dead letters ride with the first request, as they came first or among the events.
    const chunks: Chunk[] = chunksOf(events, this.settings.maxBytes).map((chunk, i) => ({
      events: chunk,
      deadLetters: i === 0 ? deadLetters : [],
    }));
    if (chunks.length === 0 && deadLetters.length > 0) chunks.push({ events: [], deadLetters });
    for (let chunk = chunks.shift(); chunk !== undefined; chunk = chunks.shift()) {
      const outcome = await this.untilDone('publish to Kafka', () =>
        this.sink.publish(chunk.events, chunk.deadLetters),
      );
      // Shutting down with the broker unreachable: the batch stays pending, whole, for the next owner.
      if (outcome === 'stopped') return false;
      if (outcome === 'done') continue;
      // Refused for good: fewer messages at a time, down to one, which is then parked.
      const [refused] = chunk.events;
      if (chunk.events.length + chunk.deadLetters.length > 1) {
        chunks.unshift(...halves(chunk));
      } else if (refused === undefined) {
        // A dead letter the dead-letter topic refuses too: nothing left to try.
        this.metrics.unpublishable.inc();
        this.logger.error(
          `the broker refuses a dead letter for good (${message(outcome.refused)}); dropped: ${chunk.deadLetters[0]?.headers[DLQ_SOURCE_HEADER] ?? ''}`,
        );
      } else {
        const letter = parkedCopy(refused, `refused by the broker: ${message(outcome.refused)}`);
        this.logger.error(
          `the broker refuses a message for good (${message(outcome.refused)}); parking it`,
        );
        chunks.unshift({ events: [], deadLetters: [letter] });
        parked.push(letter);
      }
    }
    const acknowledged = await this.untilDone('acknowledge outbox entries', () =>
      this.outbox.acknowledge(batch),
    );
    if (acknowledged !== 'done') return false;
    const now = Date.now();
    this.metrics.published.inc(events.length - (parked.length - deadLetters.length));
    this.metrics.deadLetters.inc(parked.length);
    for (const entry of batch) this.metrics.latency.observe((now - entryTime(entry.id)) / 1000);
    for (const letter of deadLetters) {
      this.logger.warn(
        `parked malformed outbox entry ${letter.headers[DLQ_SOURCE_HEADER]}: ${letter.headers[DLQ_REASON_HEADER]}`,
      );
    }
    return true;
  }

  /**
   * Retries `step` with backoff until it succeeds, the relay stops, or (for publishing) the
   * broker refuses its messages for good, which no retry can change.
   */
  private async untilDone(
    what: string,
    step: () => Promise<void>,
  ): Promise<'done' | 'stopped' | { refused: unknown }> {
    try {
      await retry(
        async (attempt) => {
          await step();
          if (attempt > 1) this.logger.log(`${what}: succeeded after ${attempt} attempts`);
        },
        {
          ...this.backoff(),
          signal: this.stop.signal,
          retryable: (error) => !this.sink.refusesForGood(error),
          onRetry: ({ attempt, error }) => {
            this.metrics.retries.inc();
            if (attempt === 1)
              this.logger.warn(`${what} failed, retrying with backoff: ${message(error)}`);
          },
        },
      );
      return 'done';
    } catch (error) {
      // Stopped: not retried further, and the wait in progress ended at once.
      if (this.stop.signal.aborted) return 'stopped';
      return { refused: error };
    }
  }

  /** PUBLISH_RETRY_INITIAL_MS doubling up to PUBLISH_RETRY_MAX_MS, with equal jitter. */
  private backoff(): BackoffOptions {
    return { initialMs: this.settings.retryInitialMs, maxMs: this.settings.retryMaxMs };
  }

  private async pause(ms: number): Promise<void> {
    await sleep(ms, undefined, { signal: this.stop.signal }).catch(() => undefined);
  }
}

/** A chunk's two halves, in order (events first, then dead letters, as they were sent). */
function halves(chunk: Chunk): Chunk[] {
  const all = [
    ...chunk.events.map((m) => ({ m, dead: false })),
    ...chunk.deadLetters.map((m) => ({ m, dead: true })),
  ];
  const middle = Math.ceil(all.length / 2);
  return [all.slice(0, middle), all.slice(middle)].map((part) => ({
    events: part.filter((p) => !p.dead).map((p) => p.m),
    deadLetters: part.filter((p) => p.dead).map((p) => p.m),
  }));
}

/** The message as a dead letter, unchanged, with why it could not be published. */
function parkedCopy(refused: OutgoingMessage, reason: string): OutgoingMessage {
  return {
    key: refused.key,
    value: refused.value,
    headers: {
      ...refused.headers,
      [DLQ_REASON_HEADER]: reason,
      [DLQ_SOURCE_HEADER]: refused.headers[DLQ_SOURCE_HEADER] ?? 'revocation-publisher',
    },
  };
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
