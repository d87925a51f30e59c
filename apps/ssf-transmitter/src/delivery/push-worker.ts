import { backoffDelay, pause, type BackoffOptions } from '@app/contracts';
import type { LoggerService } from '@nestjs/common';
import type { SsfMetrics } from '../metrics';
import type { QueuedSet, StreamStore } from '../streams/stream-store';
import type { PushClient, PushOutcome } from './push-client';

export interface PushWorkerOptions {
  streamId: string;
  /** The receiver's endpoint_url and Authorization header: a change makes a new worker. */
  target: string;
  authorization: string | undefined;
  store: StreamStore;
  client: PushClient;
  metrics: SsfMetrics;
  logger: LoggerService;
  backoff: BackoffOptions;
  /** SETs in flight at once (each about a different user). */
  concurrency: number;
  /** Whether the stream delivers now (enabled); a paused stream keeps its queue. */
  active: () => boolean;
}

const IDLE_RECHECK_MS = 1_000;

/**
 * Delivers one push stream's queue, oldest first: up to `concurrency` SETs at once, but one
 * user's SETs one after the other, and a SET leaves the queue only once the receiver took it
 * (or refused it with 400). After a failure the failed SETs are tried again, after a backoff
 * that grows while the receiver keeps failing; later SETs of the same user wait for them.
 * Each stream has its own worker and connections, so one receiver never delays another.
 */
export class PushWorker {
  private readonly stopping = new AbortController();
  private wakeUp: (() => void) | undefined;
  private failures = 0;
  readonly done: Promise<void>;
  readonly target: string;
  readonly authorization: string | undefined;

  constructor(private readonly options: PushWorkerOptions) {
    this.target = options.target;
    this.authorization = options.authorization;
    this.done = this.run();
  }

  /** Something was queued, or the stream's status changed. */
  wake(): void {
    this.wakeUp?.();
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    this.wake();
    await this.done;
    this.options.client.close();
  }

  private async run(): Promise<void> {
    const { logger, streamId } = this.options;
    while (!this.stopping.signal.aborted) {
      try {
        const sent = this.options.active() ? await this.deliverBatch() : 0;
        if (sent === 0) await this.idle();
      } catch (error) {
        logger.error(`stream ${streamId}: delivery interrupted: ${String(error)}`);
        await this.backOff();
      }
    }
  }

  /** Waits for `wake`, at most a second (a missed wake-up costs a second, never a SET). */
  private async idle(): Promise<void> {
    const woken = new Promise<void>((resolve) => {
      this.wakeUp = resolve;
    });
    await Promise.race([woken, pause(IDLE_RECHECK_MS, this.stopping.signal)]);
    this.wakeUp = undefined;
  }

  private async backOff(): Promise<void> {
    this.failures += 1;
    await pause(backoffDelay(this.failures, this.options.backoff), this.stopping.signal);
  }

  /** Pushes the head of the queue; returns how many SETs it tried. */
  private async deliverBatch(): Promise<number> {
    const { store, streamId, concurrency } = this.options;
    const batch = await store.head(streamId, concurrency);
    if (batch.length === 0) return 0;
    const byUser = new Map<string, QueuedSet[]>();
    for (const entry of batch) {
      const key = entry.user ?? `~${entry.jti}`;
      const entries = byUser.get(key);
      if (entries) entries.push(entry);
      else byUser.set(key, [entry]);
    }
    const settled: string[] = [];
    // Per user: true when all of its SETs went; its first failure stops it (order per user).
    const users = await Promise.all(
      [...byUser.values()].map(async (entries) => {
        for (const entry of entries) {
          if (!(await this.pushOne(entry))) return false;
          settled.push(entry.jti);
        }
        return true;
      }),
    );
    await store.remove(streamId, settled);
    if (users.includes(false)) await this.backOff();
    else this.failures = 0;
    return batch.length;
  }

  /** One push; true when the SET may leave the queue (delivered, or refused for good). */
  private async pushOne(entry: QueuedSet): Promise<boolean> {
    const { client, metrics, logger, streamId } = this.options;
    const started = performance.now();
    const result: PushOutcome = await client.push(entry.set);
    metrics.pushSeconds.observe((performance.now() - started) / 1000);
    metrics.pushes.inc({ outcome: result.outcome });
    switch (result.outcome) {
      case 'delivered':
        if (entry.topicAt > 0) metrics.deliverySeconds.observe((Date.now() - entry.topicAt) / 1000);
        return true;
      case 'rejected':
        logger.warn(`stream ${streamId}: receiver refused SET ${entry.jti}: ${result.detail}`);
        return true;
      case 'failed':
      case 'timeout':
        if (this.failures === 0)
          logger.warn(`stream ${streamId}: push failed (${result.detail}); retrying with backoff`);
        return false;
    }
  }
}
