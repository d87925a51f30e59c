import { randomUUID } from 'node:crypto';
import {
  SESSION_REVOKED,
  type InitiatingEntity,
  type RevocationEvent,
} from './session-revoked.event';

export interface Revocation {
  issuer: string;
  userId: string;
  /** Omitted: every session of the user that existed at `at` ends. */
  sessionId?: string;
  initiatingEntity: InitiatingEntity;
  /** Machine-readable reason, e.g. `user_logout`, `device_limit`, `refresh_token_reuse`. */
  reason: string;
  /** When the session(s) ended, milliseconds since the epoch. */
  at: number;
}

/** Builds the SET payload for a revocation; `event_timestamp` keeps millisecond precision. */
export function buildRevocationEvent(
  revocation: Revocation,
  jti: string = randomUUID(),
): RevocationEvent {
  const { issuer, userId, sessionId, initiatingEntity, reason, at } = revocation;
  return {
    jti,
    iss: issuer,
    iat: Math.floor(at / 1000),
    events: {
      [SESSION_REVOKED]: {
        subject: {
          format: 'complex',
          user: { format: 'opaque', id: userId },
          ...(sessionId === undefined
            ? {}
            : { session: { format: 'opaque' as const, id: sessionId } }),
        },
        event_timestamp: at / 1000,
        initiating_entity: initiatingEntity,
        reason_admin: { en: reason },
      },
    },
  };
}
