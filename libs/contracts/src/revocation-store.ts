import { SESSION_REVOKED, type RevocationEvent, type StoredRevocation } from '@app/contracts';
import { SessionIdSet } from './session-id-set';

export interface RevocationStoreOptions {
  /**
   * How long a revocation must be remembered: the longest access-token lifetime plus the
   * verifiers' clock tolerance. After that every token it could reject has expired anyway.
   */
  retentionMs: number;
  /** Milliseconds since the epoch; injected so tests move time by hand. */
  now?: () => number;
}

/** What a token must show to be checked: the claims revocations are about. */
export interface TokenIdentity {
  sub: string;
  sid: string;
  /** Epoch seconds. */
  iat: number;
}

export type RevocationReason = 'session_revoked' | 'user_revoked';

/**
 * The in-memory view of every revocation that still matters, checked on every request in
 * O(1) with no I/O. Applying an event twice changes nothing.
 *
 * - A revoked session rejects all its tokens, whatever their `iat`.
 * - A user-wide revocation at instant T (ms) rejects exactly the tokens with `iat * 1000 ≤ T`:
 *   the session service issues every token of a session created after T with an `iat`
 *   strictly after T (see docs/ARCHITECTURE.md), so one-second `iat` stays exact.
 */
export class RevocationStore {
  /** sid → when the entry may be forgotten (ms). Insertion order ≈ time order, for pruning. */
  private readonly sessions = new SessionIdSet();
  /** user id → latest user-wide revocation instant (ms). */
  private readonly users = new Map<string, number>();
  private readonly retentionMs: number;
  private readonly now: () => number;

  constructor({ retentionMs, now = Date.now }: RevocationStoreOptions) {
    this.retentionMs = retentionMs;
    this.now = now;
  }

  /** Applies one event; returns whether it changed the view (false for a duplicate or a stale one). */
  apply(event: RevocationEvent): boolean {
    const { subject, event_timestamp } = event.events[SESSION_REVOKED];
    return this.applyRevoked({
      userId: subject.user.id,
      sessionId: subject.session?.id,
      eventTimestamp: event_timestamp,
    });
  }

  /** {@link apply} given only what the store keeps of the event (decodeForStore's revocations). */
  applyRevoked({ userId, sessionId, eventTimestamp }: StoredRevocation): boolean {
    const at = Math.round(eventTimestamp * 1000);
    const forgetAt = this.forgetAt(at);
    if (forgetAt === undefined) return false;
    if (sessionId !== undefined) return this.sessions.add(sessionId, forgetAt);
    const known = this.users.get(userId);
    if (known !== undefined && known >= at) return false;
    this.users.set(userId, at);
    return true;
  }

  /**
   * {@link applyRevoked} for one session whose id is the UTF-8 bytes `bytes[start, end)`, read
   * where they lie (a replay's fetch answer): no string is made of it.
   */
  applyRevokedSession(bytes: Buffer, start: number, end: number, eventTimestamp: number): boolean {
    const forgetAt = this.forgetAt(Math.round(eventTimestamp * 1000));
    if (forgetAt === undefined) return false;
    return this.sessions.addBytes(bytes, start, end, forgetAt);
  }

  /** When a revocation at `at` (ms) may be forgotten; undefined when older than any live token. */
  private forgetAt(at: number): number | undefined {
    const forgetAt = at + this.retentionMs;
    return forgetAt <= this.now() ? undefined : forgetAt;
  }

  /** Why this token is revoked, or undefined when it is not. */
  check(token: TokenIdentity): RevocationReason | undefined {
    if (this.sessions.has(token.sid)) return 'session_revoked';
    const notBefore = this.users.get(token.sub);
    if (notBefore !== undefined && token.iat * 1000 <= notBefore) return 'user_revoked';
    return undefined;
  }

  /** Forgets what no live token can be affected by any more; returns how many entries went. */
  prune(): number {
    const now = this.now();
    // Later entries were (mostly) added later: it stops at the first live one.
    let dropped = this.sessions.forgetExpired(now);
    for (const [userId, at] of this.users) {
      if (at + this.retentionMs <= now) {
        this.users.delete(userId);
        dropped += 1;
      }
    }
    return dropped;
  }

  size(): { sessions: number; users: number } {
    return { sessions: this.sessions.size, users: this.users.size };
  }
}
