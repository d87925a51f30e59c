import { z } from 'zod';

/**
 * Sent by the publisher to every partition at a fixed interval, so each consumer knows how
 * fresh its view of every partition is.
 *
 * Version 2 (header `schema-version: 2`): `sent_at` is the instant the publisher vouches for:
 * every revocation written to the outbox before it is on the topic ahead of this heartbeat
 * (the start of its last read that left nothing behind), so a consumer's staleness bound holds
 * exactly. `partitions` is how many partitions the publisher routes to: a consumer that reads
 * fewer knows, before any event reaches a new partition, that it must read more.
 */
export const heartbeat = z.strictObject({
  publisher_id: z.string().min(1).max(128),
  /** Publisher clock, milliseconds since the epoch: what this heartbeat vouches for. */
  sent_at: z.int().nonnegative(),
  /** The heartbeat interval the publisher runs with, in milliseconds. */
  interval_ms: z.int().positive(),
  /** Partitions of the topic the publisher sends to (revocations and heartbeats). */
  partitions: z.int().positive().max(100_000),
});
export type Heartbeat = z.infer<typeof heartbeat>;

/**
 * Version 1, from publishers not yet upgraded: no partition count, and `sent_at` the time of
 * sending. Consumers still read it during a rolling upgrade (consumers first, then publishers).
 */
export const heartbeatV1 = heartbeat.omit({ partitions: true });
export type HeartbeatV1 = z.infer<typeof heartbeatV1>;
