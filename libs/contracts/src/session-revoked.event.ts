import { z } from 'zod';

/** The OpenID CAEP event type this topic carries, inside a Security Event Token (RFC 8417). */
export const SESSION_REVOKED =
  'https://schemas.openid.net/secevent/caep/event-type/session-revoked';

const opaque = z.strictObject({ format: z.literal('opaque'), id: z.string().min(1).max(256) });

/** Who ended the session, as CAEP names it. */
export const initiatingEntity = z.enum(['user', 'admin', 'policy', 'system']);
export type InitiatingEntity = z.infer<typeof initiatingEntity>;

/**
 * A CAEP `session-revoked` event. A subject with a session ends that session; a subject
 * without one ends every session of the user that existed at `event_timestamp`.
 * `event_timestamp` is a NumericDate (seconds since the epoch) with millisecond fractions,
 * so a session created in the same second as a "log out everywhere" can be told apart.
 */
export const sessionRevokedEvent = z.strictObject({
  subject: z.strictObject({
    format: z.literal('complex'),
    user: opaque,
    session: opaque.optional(),
  }),
  event_timestamp: z.number().nonnegative(),
  initiating_entity: initiatingEntity,
  reason_admin: z.strictObject({ en: z.string().min(1).max(256) }).optional(),
});

/** The message value on the revocation topic: a SET payload carrying one `session-revoked` event. */
export const revocationEvent = z.strictObject({
  jti: z.string().min(1).max(128),
  iss: z.string().min(1).max(512),
  iat: z.int().nonnegative(),
  events: z.strictObject({ [SESSION_REVOKED]: sessionRevokedEvent }),
});

export type RevocationEvent = z.infer<typeof revocationEvent>;
export type SessionRevoked = z.infer<typeof sessionRevokedEvent>;
