import type { RedisClient } from '@app/redis';
import { Cluster } from 'ioredis';
import type { StreamRecord } from './stream-config';

/** One SET waiting for delivery: its receiver's user (for per-user order), the JWS, and when
 * its event was on the topic (ms; 0 for verification events). */
export interface QueuedSet {
  jti: string;
  user: string | null;
  set: string;
  topicAt: number;
}

interface StoredSet {
  u: string | null;
  s: string;
  t: number;
}

/** A SET for a stream, ready to be queued with {@link StreamStore.enqueue}. */
export interface Outgoing {
  streamId: string;
  entry: QueuedSet;
}

/** A Redis Cluster hash tag: the part of a key its slot is computed from. */
const HASH_TAG = /\{[^}]+\}/;

/**
 * Streams, their subjects and their delivery queues, in Redis under one prefix:
 * `streams` (hash: id → stream), `subjects:<id>` (hash: `user:<id>` / `session:<id>` →
 * 1 added, 0 removed), `q:<id>` (list of SET jtis, oldest first), `sets:<id>` (hash: jti →
 * SET), `offsets` (hash: `<topic>:<partition>` → last offset queued).
 */
export class StreamStore {
  private readonly prefix: string;

  /**
   * On a Redis Cluster the keys must share one hash slot (transactions span streams, queues
   * and offsets): a prefix without a hash tag is made one, `ssf:` → `{ssf:}`. All of the
   * transmitter's keys then live on one node.
   */
  constructor(
    private readonly redis: RedisClient,
    prefix: string,
  ) {
    this.prefix = redis instanceof Cluster && !HASH_TAG.test(prefix) ? `{${prefix}}` : prefix;
  }

  private key = (...parts: string[]) => `${this.prefix}${parts.join(':')}`;

  async all(): Promise<StreamRecord[]> {
    const values = await this.redis.hvals(this.key('streams'));
    return values.map((value) => JSON.parse(value) as StreamRecord);
  }

  async get(streamId: string): Promise<StreamRecord | undefined> {
    const value = await this.redis.hget(this.key('streams'), streamId);
    return value === null ? undefined : (JSON.parse(value) as StreamRecord);
  }

  async save(stream: StreamRecord): Promise<void> {
    await this.redis.hset(this.key('streams'), stream.stream_id, JSON.stringify(stream));
  }

  async delete(streamId: string): Promise<void> {
    await this.redis
      .multi()
      .hdel(this.key('streams'), streamId)
      .del(this.key('q', streamId), this.key('sets', streamId), this.key('subjects', streamId))
      .exec();
  }

  /** Drops a stream's waiting SETs (a disabled stream holds none). */
  async clearQueue(streamId: string): Promise<void> {
    await this.redis.del(this.key('q', streamId), this.key('sets', streamId));
  }

  async setSubject(streamId: string, field: string, added: boolean): Promise<void> {
    await this.redis.hset(this.key('subjects', streamId), field, added ? '1' : '0');
  }

  /** A stream's subject marks: `user:<id>` / `session:<id>` → '1' added, '0' removed. */
  async subjects(streamId: string): Promise<Map<string, string>> {
    return new Map(Object.entries(await this.redis.hgetall(this.key('subjects', streamId))));
  }

  /** The last offset of `topic`/`partition` whose SETs are queued, or -1. */
  async queuedOffset(topic: string, partition: number): Promise<number> {
    const value = await this.redis.hget(this.key('offsets'), `${topic}:${partition}`);
    return value === null ? -1 : Number(value);
  }

  /**
   * Queues SETs, and records that the topic was queued up to `offset`, in one transaction:
   * after a crash, the messages are either queued and marked, or neither.
   */
  async enqueue(
    outgoing: Outgoing[],
    position?: { topic: string; partition: number; offset: string },
  ): Promise<void> {
    const multi = this.redis.multi();
    const byStream = new Map<string, QueuedSet[]>();
    for (const { streamId, entry } of outgoing) {
      const entries = byStream.get(streamId);
      if (entries) entries.push(entry);
      else byStream.set(streamId, [entry]);
    }
    // Two commands per stream, whatever the number of SETs (in order: RPUSH keeps it).
    for (const [streamId, entries] of byStream) {
      const stored = entries.map(({ jti, user, set, topicAt }): [string, string] => [
        jti,
        JSON.stringify({ u: user, s: set, t: topicAt } satisfies StoredSet),
      ]);
      multi.hset(this.key('sets', streamId), Object.fromEntries(stored));
      multi.rpush(this.key('q', streamId), ...entries.map((entry) => entry.jti));
    }
    if (position)
      multi.hset(this.key('offsets'), `${position.topic}:${position.partition}`, position.offset);
    const replies = await multi.exec();
    const failed = replies?.find(([error]) => error);
    if (replies === null || failed) throw failed?.[0] ?? new Error('enqueue: transaction aborted');
  }

  /** The oldest `count` SETs of a stream, in order. */
  async head(streamId: string, count: number): Promise<QueuedSet[]> {
    const jtis = await this.redis.lrange(this.key('q', streamId), 0, count - 1);
    if (jtis.length === 0) return [];
    const values = await this.redis.hmget(this.key('sets', streamId), ...jtis);
    const found: QueuedSet[] = [];
    const orphans: string[] = [];
    jtis.forEach((jti, index) => {
      const value = values[index];
      if (value === null || value === undefined) return void orphans.push(jti);
      const { u, s, t } = JSON.parse(value) as StoredSet;
      found.push({ jti, user: u, set: s, topicAt: t });
    });
    // A jti without its SET (a queue cleared while an intake wrote): never deliverable.
    await this.remove(streamId, orphans);
    return found;
  }

  /** Removes delivered (or acknowledged) SETs; returns how many were still queued. */
  async remove(streamId: string, jtis: string[]): Promise<number> {
    if (jtis.length === 0) return 0;
    const multi = this.redis.multi();
    for (const jti of jtis) multi.lrem(this.key('q', streamId), 1, jti);
    multi.hdel(this.key('sets', streamId), ...jtis);
    const replies = (await multi.exec()) ?? [];
    return Number(replies.at(-1)?.[1] ?? 0);
  }

  async depth(streamId: string): Promise<number> {
    return this.redis.llen(this.key('q', streamId));
  }
}
