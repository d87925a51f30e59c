import { createHash } from 'node:crypto';

/**
 * The revocation outbox: Redis Streams written by the session service in the same atomic
 * step as the session change, relayed to Kafka by the revocation publisher.
 *
 * The outbox is sharded so that it can live in a Redis Cluster: shard `n`'s stream and
 * every key of the users hashed to shard `n` share the hash tag `{o<n>}`, hence one slot,
 * so one Lua script can change a user's sessions and append to the outbox atomically.
 * One user's events always go to one shard, so they stay in order.
 */
export interface OutboxLayout {
  /** Prefix of every key (isolates environments and tests), e.g. `sr:`. */
  prefix: string;
  shards: number;
}

export const DEFAULT_OUTBOX_SHARDS = 16;
export const OUTBOX_GROUP = 'revocation-publisher';

/** Stream entry fields. */
export const OutboxField = {
  /** The Kafka key: the user id. */
  Key: 'key',
  /** The revocation event (SET payload), JSON. */
  Event: 'event',
} as const;

/** Which shard a user's keys and outbox entries live in (stable across processes). */
export function outboxShard(userId: string, shards: number): number {
  return createHash('sha1').update(userId).digest().readUInt32BE(0) % shards;
}

/** The hash tag shared by a shard's stream and its users' keys. */
export function shardTag(shard: number): string {
  return `{o${shard}}`;
}

export function outboxStream(layout: OutboxLayout, shard: number): string {
  return `${layout.prefix}${shardTag(shard)}:outbox`;
}

export function allOutboxStreams(layout: OutboxLayout): string[] {
  return Array.from({ length: layout.shards }, (_, shard) => outboxStream(layout, shard));
}
