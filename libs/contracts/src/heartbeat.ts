import { z } from 'zod';

/**
 * Sent by the publisher to every partition at a fixed interval, with the publisher's clock,
 * so each consumer knows how fresh its view of every partition is.
 */
export const heartbeat = z.strictObject({
  publisher_id: z.string().min(1).max(128),
  /** Publisher clock, milliseconds since the epoch. */
  sent_at: z.int().nonnegative(),
  /** The heartbeat interval the publisher runs with, in milliseconds. */
  interval_ms: z.int().positive(),
});
export type Heartbeat = z.infer<typeof heartbeat>;
