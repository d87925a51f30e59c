import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import {
  allOutboxStreams,
  OUTBOX_GROUP,
  outboxStream,
  shardTag,
  type OutboxLayout,
} from '@app/contracts';
import { duplicateClient, loadLuaCommands, luaCommand, REDIS, type RedisClient } from '@app/redis';
import { Cluster } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { toFields, type OutboxEntry } from './outbox-entry';
import { ClusterShardReaders, readNewEntries, type StreamItems } from './shard-readers';
import { outboxSettings, type OutboxSettings } from '../publisher.settings';

const commands = loadLuaCommands(join(__dirname, 'lua'));
const leaseCommand = luaCommand(
  commands,
  'lease',
  z.object({ result: z.enum(['renewed', 'acquired', 'lost']) }),
).takes<{ owner: string; ttl_ms: number }>();
const releaseCommand = luaCommand(commands, 'release', z.object({ released: z.boolean() })).takes<{
  owner: string;
}>();

export type LeaseResult = 'renewed' | 'acquired' | 'lost';

/**
 * The Redis side of the relay: the consumer group on every shard stream, per-shard leases
 * (one relaying owner per shard keeps each user's events in order), reading, claiming and
 * acknowledging entries.
 */
@Injectable()
export class OutboxStore implements OnApplicationShutdown {
  readonly layout: OutboxLayout;
  readonly consumer: string;
  private readonly streamShard = new Map<string, number>();
  /**
   * Blocking reads get their own connection, so leases and acknowledgements never wait behind
   * them: one for every shard on a single Redis, one per shard on a Cluster.
   */
  private readonly reader: RedisClient | ClusterShardReaders;

  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(outboxSettings.KEY) { layout, instanceId, blockMs }: OutboxSettings,
  ) {
    this.layout = layout;
    // Random per start unless given: replicas started alike (each process 1 of its container)
    // must never share the identity their leases and pending entries go by.
    this.consumer = instanceId ?? `publisher-${hostname()}-${randomBytes(4).toString('hex')}`;
    if (redis instanceof Cluster) {
      this.reader = new ClusterShardReaders(redis, this.consumer, blockMs);
    } else {
      const reader = duplicateClient(redis, { commandTimeout: blockMs + 2_000 });
      reader.on('error', () => undefined); // reported by the relay and the main connection
      this.reader = reader;
    }
    allOutboxStreams(this.layout).forEach((stream, shard) => this.streamShard.set(stream, shard));
  }

  stream(shard: number): string {
    return outboxStream(this.layout, shard);
  }

  private leaseKey(shard: number): string {
    return `${this.layout.prefix}${shardTag(shard)}:outbox:lease`;
  }

  /** Creates the consumer group on every shard (from the stream's start), if missing. */
  async ensureGroups(): Promise<void> {
    await Promise.all(
      allOutboxStreams(this.layout).map((stream) =>
        this.redis
          .xgroup('CREATE', stream, OUTBOX_GROUP, '0', 'MKSTREAM')
          .catch((error: unknown) => {
            if (!(error instanceof Error) || !error.message.includes('BUSYGROUP')) throw error;
          }),
      ),
    );
  }

  async lease(shard: number, ttlMs: number): Promise<LeaseResult> {
    const { result } = await leaseCommand.run(this.redis, [this.leaseKey(shard)], {
      owner: this.consumer,
      ttl_ms: ttlMs,
    });
    return result;
  }

  async release(shard: number): Promise<void> {
    await releaseCommand.run(this.redis, [this.leaseKey(shard)], { owner: this.consumer });
  }

  /**
   * Claims pending entries of `shard` whatever consumer they were delivered to (a dead
   * publisher, or this one before a restart), oldest first. Only the lease holder calls this.
   */
  async claimPending(
    shard: number,
    cursor: string,
    count: number,
  ): Promise<{ next: string; entries: OutboxEntry[] }> {
    const stream = this.stream(shard);
    const [next, claimed, deleted] = (await this.redis.xautoclaim(
      stream,
      OUTBOX_GROUP,
      this.consumer,
      0,
      cursor,
      'COUNT',
      count,
    )) as [string, [string, string[] | null][], string[] | undefined];
    const entries = claimed.map(([id, flat]) => ({ shard, stream, id, fields: toFields(flat) }));
    // Entries deleted while pending still need acknowledging, or they stay pending forever.
    for (const id of deleted ?? []) entries.push({ shard, stream, id, fields: {} });
    return { next, entries };
  }

  /**
   * Removes from the shard's consumer group the consumers that hold no pending entry and have
   * not read for `idleMs`: earlier instances (every start has a new name), after their
   * entries were claimed. Keeps the group's consumer list from growing with every restart.
   */
  async forgetIdleConsumers(shard: number, idleMs: number): Promise<void> {
    const stream = this.stream(shard);
    const consumers = (await this.redis.xinfo('CONSUMERS', stream, OUTBOX_GROUP)) as unknown[][];
    for (const fields of consumers) {
      const info = Object.fromEntries(
        fields.flatMap((value, i) => (i % 2 === 0 ? [[String(value), fields[i + 1]]] : [])),
      ) as { name?: string; pending?: number; idle?: number };
      if (
        info.name &&
        info.name !== this.consumer &&
        info.pending === 0 &&
        (info.idle ?? 0) > idleMs
      )
        await this.redis.xgroup('DELCONSUMER', stream, OUTBOX_GROUP, info.name);
    }
  }

  /** New entries of the given shards, blocking up to `blockMs` (0: do not block). */
  async readNew(shards: number[], count: number, blockMs: number): Promise<OutboxEntry[]> {
    if (shards.length === 0) return [];
    const streams = new Map(shards.map((shard) => [shard, this.stream(shard)]));
    const replies =
      this.reader instanceof ClusterShardReaders
        ? await this.reader.read(streams, count, blockMs)
        : await this.readAtOnce(this.reader, streams, count, blockMs);
    const entries: OutboxEntry[] = [];
    for (const [shard, items] of replies) {
      const stream = this.stream(shard);
      for (const [id, flat] of items) entries.push({ shard, stream, id, fields: toFields(flat) });
    }
    return entries;
  }

  /** Every shard in one XREADGROUP (a single Redis: all streams on one server). */
  private async readAtOnce(
    reader: RedisClient,
    streams: Map<number, string>,
    count: number,
    blockMs: number,
  ): Promise<Map<number, StreamItems>> {
    const reply = await readNewEntries(
      reader,
      this.consumer,
      [...streams.values()],
      count,
      blockMs,
    );
    const byShard = new Map<number, StreamItems>();
    for (const [stream, items] of reply) byShard.set(this.streamShard.get(stream) ?? -1, items);
    return byShard;
  }

  /**
   * Acknowledges and deletes relayed entries, atomically per call on a single Redis (the
   * outbox only holds work); on a Cluster atomically per shard, as a transaction cannot span
   * slots (acknowledging again, after a partial failure, changes nothing).
   */
  async acknowledge(entries: OutboxEntry[]): Promise<void> {
    const byStream = new Map<string, string[]>();
    for (const entry of entries)
      byStream.set(entry.stream, [...(byStream.get(entry.stream) ?? []), entry.id]);
    const groups =
      this.redis instanceof Cluster ? [...byStream].map((pair) => new Map([pair])) : [byStream];
    await Promise.all(groups.map((group) => this.acknowledgeAtOnce(group)));
  }

  private async acknowledgeAtOnce(byStream: Map<string, string[]>): Promise<void> {
    const transaction = this.redis.multi();
    for (const [stream, ids] of byStream) {
      transaction.xack(stream, OUTBOX_GROUP, ...ids);
      transaction.xdel(stream, ...ids);
    }
    const results = await transaction.exec();
    const failed = results?.find(([error]) => error);
    if (!results || failed) throw failed?.[0] ?? new Error('outbox acknowledgement was discarded');
  }

  onApplicationShutdown(): void {
    if (this.reader instanceof ClusterShardReaders) this.reader.close();
    else this.reader.disconnect();
  }

  /** Entries not yet relayed (all shards) and the age in ms of the oldest one. */
  async backlog(now: number): Promise<{ length: number; oldestAgeMs: number }> {
    const streams = allOutboxStreams(this.layout);
    // One pipeline on a single Redis; one per shard on a Cluster (a pipeline goes to one node).
    const groups = this.redis instanceof Cluster ? streams.map((stream) => [stream]) : [streams];
    const results = (
      await Promise.all(
        groups.map(async (group) => {
          const pipeline = this.redis.pipeline();
          for (const stream of group) {
            pipeline.xlen(stream);
            pipeline.xrange(stream, '-', '+', 'COUNT', 1);
          }
          return (await pipeline.exec()) ?? [];
        }),
      )
    ).flat();
    let length = 0;
    let oldest = now;
    for (let i = 0; i < results.length; i += 2) {
      length += Number(results[i]?.[1] ?? 0);
      const first = (results[i + 1]?.[1] as [string, string[]][] | undefined)?.[0];
      if (first) oldest = Math.min(oldest, Number(first[0].split('-')[0]));
    }
    return { length, oldestAgeMs: now - oldest };
  }
}
