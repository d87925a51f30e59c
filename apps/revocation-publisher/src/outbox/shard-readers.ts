import { OUTBOX_GROUP } from '@app/contracts';
import { connectionOptions, duplicateClient, untilReady, type RedisClient } from '@app/redis';
import type { Cluster } from 'ioredis';
import { setTimeout as sleep } from 'node:timers/promises';

/** A shard stream's reply to XREADGROUP: its entries as [id, flat fields]. */
export type StreamItems = [id: string, fields: string[]][];

/**
 * XREADGROUP of `streams`' new entries (`>`) for `consumer`, blocking up to `blockMs` when it
 * is above 0; the reply as [stream, entries] pairs (none when nothing came).
 */
export async function readNewEntries(
  client: RedisClient,
  consumer: string,
  streams: string[],
  count: number,
  blockMs: number,
): Promise<[stream: string, items: StreamItems][]> {
  const ids = streams.map(() => '>');
  // The typed method, not `call`: ioredis shapes the reply the same under RESP2 and RESP3.
  const reply =
    blockMs > 0
      ? await client.xreadgroup(
          'GROUP',
          OUTBOX_GROUP,
          consumer,
          'COUNT',
          count,
          'BLOCK',
          blockMs,
          'STREAMS',
          ...streams,
          ...ids,
        )
      : await client.xreadgroup(
          'GROUP',
          OUTBOX_GROUP,
          consumer,
          'COUNT',
          count,
          'STREAMS',
          ...streams,
          ...ids,
        );
  return (reply ?? []) as [string, StreamItems][];
}

/** How often an unblock is sent again while a read has not ended (it may not have blocked yet). */
const UNBLOCK_RETRY_MS = 5;

interface Reader {
  client: Cluster;
  /** The server's id of the reader's connection to the shard's node (for CLIENT UNBLOCK). */
  id?: number;
}

/**
 * Reads the outbox shards of a Redis Cluster, where one XREADGROUP may name one shard only
 * (each shard stream is its own hash slot). Each shard has a reader of its own, so blocking
 * reads of different shards wait side by side; as soon as one shard has entries, the others'
 * reads are ended with CLIENT UNBLOCK (they answer "nothing" unless entries came meanwhile),
 * so every read has ended, and its entries are in hand, when {@link read} returns: exactly
 * what one multi-stream read on a single Redis gives.
 */
export class ClusterShardReaders {
  private readonly readers = new Map<number, Reader>();

  constructor(
    private readonly cluster: Cluster,
    private readonly consumer: string,
    private readonly blockMs: number,
  ) {}

  /**
   * New entries of each shard (by shard), waiting up to `blockMs` for the first (0: no
   * wait). Fails when any shard's read fails: its entries may have been delivered, so the
   * caller claims the pending ones again (as after any failed read).
   */
  async read(
    streams: Map<number, string>,
    count: number,
    blockMs: number,
  ): Promise<Map<number, StreamItems>> {
    const found = await this.readAll(streams, count, 0);
    if (blockMs === 0 || [...found.values()].some((items) => items.length > 0)) return found;
    return this.readAll(streams, count, blockMs);
  }

  private async readAll(
    streams: Map<number, string>,
    count: number,
    blockMs: number,
  ): Promise<Map<number, StreamItems>> {
    const shards = [...streams.keys()];
    const settled = new Set<number>();
    let someFound = false;
    const reads = shards.map(async (shard) => {
      const stream = streams.get(shard) ?? '';
      try {
        const items = await this.readShard(shard, stream, count, blockMs);
        if (items.length > 0 && !someFound) {
          someFound = true;
          if (blockMs > 0) void this.unblockOthers(streams, settled, shard);
        }
        return [shard, items] as const;
      } catch (error) {
        this.drop(shard); // a fresh connection (and slot map) next time
        throw error;
      } finally {
        settled.add(shard);
      }
    });
    const results = await Promise.allSettled(reads);
    const failed = results.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
    return new Map(
      results.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : [])),
    );
  }

  private async readShard(
    shard: number,
    stream: string,
    count: number,
    blockMs: number,
  ): Promise<StreamItems> {
    const reader = await this.reader(shard, stream);
    const reply = await readNewEntries(reader.client, this.consumer, [stream], count, blockMs);
    return reply[0]?.[1] ?? [];
  }

  /** Ends the blocked reads of the other shards, again and again until each has ended. */
  private async unblockOthers(
    streams: Map<number, string>,
    settled: Set<number>,
    except: number,
  ): Promise<void> {
    const others = [...streams.keys()].filter((shard) => shard !== except);
    await Promise.all(
      others.map(async (shard) => {
        const id = this.readers.get(shard)?.id;
        const stream = streams.get(shard) ?? '';
        while (!settled.has(shard) && id !== undefined) {
          // A pipeline with the stream's key goes to the node serving its slot: the reader's node.
          await this.cluster
            .pipeline()
            .exists(stream)
            .client('UNBLOCK', id)
            .exec()
            .catch(() => undefined);
          if (!settled.has(shard)) await sleep(UNBLOCK_RETRY_MS);
        }
      }),
    );
  }

  /** The shard's reader, with the id of its connection to the shard's node. */
  private async reader(shard: number, stream: string): Promise<Reader> {
    let reader = this.readers.get(shard);
    if (!reader) {
      const client = duplicateClient(this.cluster, {
        // A blocking read may take up to blockMs, on top of the command itself.
        commandTimeout: (connectionOptions(this.cluster).commandTimeout ?? 2_000) + this.blockMs,
      });
      client.on('error', () => undefined); // reported by the relay and the main client
      reader = { client };
      this.readers.set(shard, reader);
      // No offline queue: commands before the slot map is known would fail at once.
      await untilReady(client, connectionOptions(this.cluster).connectTimeout ?? 2_000);
    }
    if (reader.id === undefined) {
      const replies = await reader.client.pipeline().exists(stream).client('ID').exec();
      const [error, id] = replies?.[1] ?? [new Error('CLIENT ID was discarded')];
      if (error) throw error;
      reader.id = Number(id);
    }
    return reader;
  }

  private drop(shard: number): void {
    this.readers.get(shard)?.client.disconnect();
    this.readers.delete(shard);
  }

  close(): void {
    for (const shard of [...this.readers.keys()]) this.drop(shard);
  }
}
