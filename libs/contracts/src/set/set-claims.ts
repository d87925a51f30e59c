import { z } from 'zod';
import { initiatingEntity, SESSION_REVOKED, type RevocationEvent } from '../session-revoked.event';
import { SSF_VERIFICATION } from './uris';

const opaque = z.strictObject({ format: z.literal('opaque'), id: z.string().min(1).max(256) });

/**
 * The subject of a session-revoked SET (RFC 9493 complex subject): the user, and the session
 * when one session ended; without `session` every session of the user that existed at
 * `event_timestamp` ended (a logout everywhere).
 */
export const sessionSubject = z.strictObject({
  format: z.literal('complex'),
  user: opaque,
  session: opaque.optional(),
});
export type SessionSubject = z.infer<typeof sessionSubject>;

/** What every SET this transmitter signs carries (RFC 8417, SSF 1.0 section 4). */
const commonClaims = {
  iss: z.string().min(1),
  aud: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
  iat: z.int().nonnegative(),
  jti: z.string().min(1).max(128),
};

/**
 * A CAEP 1.0 `session-revoked` SET. `event_timestamp` is a NumericDate with the millisecond
 * fraction the revocation topic carries (RFC 7519 allows non-integer values), so a session
 * created in the same second as a logout everywhere can be told apart. `txn` is the jti of the
 * event on the revocation topic: every receiver's SET for one revocation has the same `txn`.
 */
export const sessionRevokedSet = z.strictObject({
  ...commonClaims,
  txn: z.string().min(1).max(128),
  sub_id: sessionSubject,
  events: z.strictObject({
    [SESSION_REVOKED]: z.strictObject({
      event_timestamp: z.number().nonnegative(),
      initiating_entity: initiatingEntity,
      reason_admin: z.record(z.string(), z.string().min(1).max(256)).optional(),
    }),
  }),
});
export type SessionRevokedSet = z.infer<typeof sessionRevokedSet>;

/** An SSF 1.0 verification SET: the subject is the stream, `state` echoes the receiver's. */
export const verificationSet = z.strictObject({
  ...commonClaims,
  sub_id: opaque,
  events: z.strictObject({
    [SSF_VERIFICATION]: z.strictObject({ state: z.string().max(1024).optional() }),
  }),
});
export type VerificationSet = z.infer<typeof verificationSet>;

export interface SetEnvelope {
  /** The transmitter's issuer identifier (its public URL). */
  issuer: string;
  /** The receiver's audience, as its stream configuration names it. */
  audience: string | string[];
  /** This SET's own identifier; unique per receiver. */
  jti: string;
  /** Seconds since the epoch (default: now). */
  iat?: number;
}

const now = () => Math.floor(Date.now() / 1000);

/**
 * The SET a receiver gets for one `session-revoked` event of the revocation topic: the event's
 * subject becomes the top-level `sub_id` (SSF 1.0 moved it out of the event), its CAEP claims
 * stay as they are.
 */
export function buildSessionRevokedSet(
  event: RevocationEvent,
  { issuer, audience, jti, iat = now() }: SetEnvelope,
): SessionRevokedSet {
  const { subject, event_timestamp, initiating_entity, reason_admin } =
    event.events[SESSION_REVOKED];
  return sessionRevokedSet.parse({
    iss: issuer,
    aud: audience,
    iat,
    jti,
    txn: event.jti,
    sub_id: subject,
    events: {
      [SESSION_REVOKED]: {
        event_timestamp,
        initiating_entity,
        ...(reason_admin && { reason_admin }),
      },
    },
  });
}

/** The verification SET for a stream (SSF 1.0 section 8.1.4.2). */
export function buildVerificationSet(
  streamId: string,
  state: string | undefined,
  { issuer, audience, jti, iat = now() }: SetEnvelope,
): VerificationSet {
  return verificationSet.parse({
    iss: issuer,
    aud: audience,
    iat,
    jti,
    sub_id: { format: 'opaque', id: streamId },
    events: { [SSF_VERIFICATION]: state === undefined ? {} : { state } },
  });
}
