import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RevocationPublisherEnv } from '../config';
import { entryTime, type OutboxEntry } from '../outbox/outbox-entry';
import { OutboxStore } from '../outbox/outbox.store';
import { PublisherMetrics } from '../publisher.metrics';
import { backoffDelay } from './backoff';
import { REVOCATION_SINK, type RevocationSink } from './revocation-sink';
import { toMessages } from './to-messages';

const START_OF_STREAM = '0-0';
/** How often the relay re-reads its pending entries even when nothing failed: a safety net. */
const PENDING_RECHECK_MS = 30_000;

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
 */
@Injectable()
export class OutboxRelay implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(OutboxRelay.name);
  private readonly settings;
  private running = false;
  private loop: Promise<void> | undefined;
  private leaseTimer: NodeJS.Timeout | undefined;
  private leaseRound: Promise<void> | undefined;
  private readonly stop = new AbortController();
  private readonly owned = new Set<number>();
  /** Shards just taken over, with the cursor of their pending-entry claim. */
  private readonly draining = new Map<number, string>();
  private groupsReady = false;
  private lastPollAt = 0;
  private lastPendingCheckAt = 0;
  /** When each owned shard's lease was last confirmed by Redis. */
  private readonly confirmedAt = new Map<number, number>();

  constructor(
    private readonly outbox: OutboxStore,
    @Inject(REVOCATION_SINK) private readonly sink: RevocationSink,
    private readonly metrics: PublisherMetrics,
    config: ConfigService<RevocationPublisherEnv, true>,
  ) {
    this.settings = {
      batch: config.get('OUTBOX_BATCH_SIZE', { infer: true }),
      blockMs: config.get('OUTBOX_BLOCK_MS', { infer: true }),
      lingerMs: config.get('OUTBOX_LINGER_MS', { infer: true }),
      leaseMs: config.get('OUTBOX_LEASE_MS', { infer: true }),
      shards: config.get('OUTBOX_SHARDS', { infer: true }),
      retryInitialMs: config.get('PUBLISH_RETRY_INITIAL_MS', { infer: true }),
      retryMaxMs: config.get('PUBLISH_RETRY_MAX_MS', { infer: true }),
    };
  }

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

  /** Whether the relay read the outbox recently: heartbeats vouch for nothing otherwise. */
  isHealthy(withinMs: number): boolean {
    return this.owned.size > 0 && Date.now() - this.lastPollAt <= withinMs;
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
        if (batch.length > 0) await this.relay(batch);
        if (failures > 0) this.logger.log('outbox reachable again');
        failures = 0;
      } catch (error) {
        failures += 1;
        if (failures === 1) this.logger.error(`outbox read failed, retrying: ${message(error)}`);
        // The failed command may have run: entries it delivered wait in the pending list.
        this.recheckPending();
        // The consumer group is gone (a Redis restore, a flush): create it again, from the
        // start of each stream, which holds only entries not yet relayed.
        if (message(error).includes('NOGROUP')) this.groupsReady = false;
        await this.pause(
          backoffDelay(failures, this.settings.retryInitialMs, this.settings.retryMaxMs),
        );
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
      for (let shard = 0; shard < this.settings.shards && this.running; shard += 1) {
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
      if (next === START_OF_STREAM) this.draining.delete(shard);
      else this.draining.set(shard, next);
      if (entries.length > 0)
        this.logger.warn(`took over ${entries.length} pending entries of shard ${shard}`);
      return entries;
    }
    const active = [...this.owned];
    if (active.length === 0) {
      await this.pause(Math.floor(this.settings.leaseMs / 3));
      return [];
    }
    const entries = await this.outbox.readNew(active, this.settings.batch, this.settings.blockMs);
    if (entries.length > 0 && entries.length < this.settings.batch && this.settings.lingerMs > 0) {
      // A short linger lets a burst leave as one batch; one event waits at most this long.
      await this.pause(this.settings.lingerMs);
      entries.push(...(await this.outbox.readNew(active, this.settings.batch - entries.length, 0)));
    }
    this.lastPollAt = Date.now();
    return entries;
  }

  private async relay(batch: OutboxEntry[]): Promise<void> {
    const { events, deadLetters } = toMessages(batch);
    if (events.length > 0 || deadLetters.length > 0) {
      const sent = await this.untilDone('publish to Kafka', () =>
        this.sink.publish(events, deadLetters),
      );
      // Shutting down with the broker unreachable: the batch stays pending, whole, for the next owner.
      if (!sent) return;
    }
    const acknowledged = await this.untilDone('acknowledge outbox entries', () =>
      this.outbox.acknowledge(batch),
    );
    if (!acknowledged) return;
    const now = Date.now();
    this.metrics.published.inc(events.length);
    this.metrics.deadLetters.inc(deadLetters.length);
    for (const entry of batch) this.metrics.latency.observe((now - entryTime(entry.id)) / 1000);
    for (const letter of deadLetters) {
      this.logger.warn(
        `parked malformed outbox entry ${letter.headers['dlq-source']}: ${letter.headers['dlq-reason']}`,
      );
    }
  }

  /** Retries `step` with backoff until it succeeds (true) or the relay stops (false). */
  private async untilDone(what: string, step: () => Promise<void>): Promise<boolean> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        await step();
        if (attempt > 1) this.logger.log(`${what}: succeeded after ${attempt} attempts`);
        return true;
      } catch (error) {
        if (!this.running) return false;
        this.metrics.retries.inc();
        if (attempt === 1)
          this.logger.warn(`${what} failed, retrying with backoff: ${message(error)}`);
        await this.pause(
          backoffDelay(attempt, this.settings.retryInitialMs, this.settings.retryMaxMs),
        );
      }
    }
  }

  private async pause(ms: number): Promise<void> {
    await sleep(ms, undefined, { signal: this.stop.signal }).catch(() => undefined);
  }
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
