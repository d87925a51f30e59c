export interface FreshnessOptions {
  /** A partition without a heartbeat for longer than this makes the view stale. */
  boundMs: number;
  now?: () => number;
}

export interface FreshnessReport {
  fresh: boolean;
  boundMs: number;
  /** The partitions that must each be heard from. */
  partitions: number[];
  /** Age of the stalest partition's last heartbeat (ms); Infinity when one has none yet. */
  stalestAgeMs: number;
  stalestPartition: number | undefined;
  /** Partitions never heard from. */
  silentPartitions: number[];
}

/**
 * How fresh this instance's view of the revocation topic is: the time of the last heartbeat
 * per partition. A heartbeat vouches that everything its publisher had to send before it is
 * on that partition ahead of it; so once one has been read, the view of that partition is at
 * least as fresh as the heartbeat. The instant recorded is the publisher's `sent_at`, but
 * never later than when it was read here: a heartbeat replayed from the log on start counts
 * as old, and a publisher clock running ahead cannot make a view look fresher than it is.
 */
export class PartitionFreshness {
  private readonly freshAt = new Map<number, number>();
  private partitions: number[] = [];
  /** The oldest of the partitions' instants (-Infinity while one is silent): isFresh is O(1). */
  private oldestFreshAt = -Infinity;
  private readonly boundMs: number;
  private readonly now: () => number;

  constructor({ boundMs, now = Date.now }: FreshnessOptions) {
    this.boundMs = boundMs;
    this.now = now;
  }

  /** The partitions that must each be heard from (a new one is silent until it is). */
  track(partitions: number[]): void {
    this.partitions = [...partitions].sort((a, b) => a - b);
    this.recomputeOldest();
  }

  record(partition: number, sentAt: number): void {
    const at = Math.min(sentAt, this.now());
    const previous = this.freshAt.get(partition) ?? -Infinity;
    if (at <= previous) return;
    this.freshAt.set(partition, at);
    if (previous <= this.oldestFreshAt) this.recomputeOldest();
  }

  /** Checked on every request: one comparison. */
  isFresh(): boolean {
    return this.now() - this.oldestFreshAt <= this.boundMs;
  }

  /**
   * How much longer the stalest partition has been silent than the freshest (ms): Infinity
   * when one was never heard from while another was, 0 while none was. Partitions falling
   * behind the others tell of a consumer stuck on one broker; all of them ageing together, of
   * a publisher (or a cluster) that sends nothing.
   */
  spreadMs(): number {
    let newest = -Infinity;
    for (const partition of this.partitions)
      newest = Math.max(newest, this.freshAt.get(partition) ?? -Infinity);
    return newest === -Infinity ? 0 : newest - this.oldestFreshAt;
  }

  private recomputeOldest(): void {
    let oldest = this.partitions.length === 0 ? -Infinity : Infinity;
    for (const partition of this.partitions)
      oldest = Math.min(oldest, this.freshAt.get(partition) ?? -Infinity);
    this.oldestFreshAt = oldest;
  }

  report(): FreshnessReport {
    const now = this.now();
    let stalestAgeMs = this.partitions.length === 0 ? Infinity : 0;
    let stalestPartition: number | undefined;
    const silentPartitions: number[] = [];
    for (const partition of this.partitions) {
      const at = this.freshAt.get(partition);
      if (at === undefined) silentPartitions.push(partition);
      const age = at === undefined ? Infinity : now - at;
      if (stalestPartition === undefined || age > stalestAgeMs) {
        stalestAgeMs = age;
        stalestPartition = partition;
      }
    }
    return {
      fresh: stalestAgeMs <= this.boundMs,
      boundMs: this.boundMs,
      partitions: [...this.partitions],
      stalestAgeMs,
      stalestPartition,
      silentPartitions,
    };
  }
}
