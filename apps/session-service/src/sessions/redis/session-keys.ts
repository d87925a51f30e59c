import { outboxShard, outboxStream, shardTag, type OutboxLayout } from '@app/contracts';
import { OPAQUE_TOKEN_PREFIX } from '../../tokens/opaque-token';

/**
 * Redis key names. Every key of one user carries the hash tag of the user's outbox shard, so
 * a user's sessions, refresh tokens, plan and outbox stream share one Redis Cluster hash slot
 * and one Lua script can change them atomically (see docs/ARCHITECTURE.md).
 */
export class SessionKeys {
  constructor(readonly layout: OutboxLayout) {}

  shardOf(userId: string): number {
    return outboxShard(userId, this.layout.shards);
  }

  /** The common prefix of every key in `shard`; scripts build the keys they find from it. */
  base(shard: number): string {
    return `${this.layout.prefix}${shardTag(shard)}:`;
  }

  outbox(shard: number): string {
    return outboxStream(this.layout, shard);
  }

  expiries(shard: number): string {
    return `${this.base(shard)}expiries`;
  }

  session(shard: number, sessionId: string): string {
    return `${this.base(shard)}session:${sessionId}`;
  }

  /** A session's refresh-token family, by the SHA-256 of the family part of its tokens. */
  refreshFamily(shard: number, familyHash: string): string {
    return `${this.base(shard)}refresh:${familyHash}`;
  }

  /** An opaque access token (phantom token), by the SHA-256 of the whole token. */
  opaqueToken(shard: number, tokenHash: string): string {
    return `${this.base(shard)}at:${tokenHash}`;
  }

  /** That an ID token (by the hash of its issuer and `jti`, or of itself) opened a session. */
  idTokenUse(userId: string, useId: string): string {
    return `${this.base(this.shardOf(userId))}id-token:${useId}`;
  }

  /**
   * That the provider logged out one of its sessions (by the hash of issuer and `sid`), in the
   * user's slot: the sign-in command refuses ID tokens of it.
   */
  providerSessionEnded(userId: string, providerSession: string): string {
    return `${this.base(this.shardOf(userId))}idp-ended:${providerSession}`;
  }

  /**
   * Which user signed in with a provider session (by the hash of issuer and `sid`): for logout
   * tokens without `sub`. Outside every user's slot: it is read before the user is known.
   */
  providerSessionUser(providerSession: string): string {
    return `${this.layout.prefix}idp-sid:${providerSession}`;
  }

  /** A user's live sessions (zset by last activity). */
  userSessions(userId: string): string {
    return `${this.base(this.shardOf(userId))}user:${userId}:sessions`;
  }

  plan(userId: string): string {
    return `${this.base(this.shardOf(userId))}user:${userId}:plan`;
  }

  revokedBefore(userId: string): string {
    return `${this.base(this.shardOf(userId))}user:${userId}:revoked_before`;
  }

  /** Session ids carry their shard, so a session can be found from its id alone. */
  sessionShard(sessionId: string): number | undefined {
    const match = /^s(\d+)_[A-Za-z0-9_-]{16,}$/.exec(sessionId);
    const shard = match ? Number(match[1]) : NaN;
    return Number.isInteger(shard) && shard < this.layout.shards ? shard : undefined;
  }

  /**
   * Refresh tokens carry their shard the same way: `rt<shard>_<family>.<secret>`, the family
   * (128 random bits) naming the session's chain of tokens, the secret (256 random bits) one
   * link of it.
   */
  parseRefreshToken(token: string): RefreshToken | undefined {
    const match = /^rt(\d+)_([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/.exec(token);
    const shard = match ? Number(match[1]) : NaN;
    if (!match?.[2] || !match[3] || !Number.isInteger(shard) || shard >= this.layout.shards)
      return undefined;
    return { shard, family: match[2], secret: match[3] };
  }

  /**
   * Opaque access tokens carry their shard after the secret: `at_<secret>.<shard>`, the secret
   * 256 random bits (base64url, 43 characters), the shard the session's, so the token's key is
   * in the session's hash slot and the commands that end the session delete it. The shard comes
   * last, after a `.` (not in the base64url alphabet), so the token keeps the `at_` prefix
   * followed by its random part.
   */
  parseOpaqueToken(token: string): { shard: number } | undefined {
    const match = /^at_[A-Za-z0-9_-]{43}\.(\d{1,5})$/.exec(token);
    const shard = match ? Number(match[1]) : NaN;
    return Number.isInteger(shard) && shard < this.layout.shards ? { shard } : undefined;
  }
}

/** A new opaque access token of `shard` with `secret` (256 random bits, base64url). */
export function opaqueToken(shard: number, secret: string): string {
  return `${OPAQUE_TOKEN_PREFIX}${secret}.${shard}`;
}

export interface RefreshToken {
  shard: number;
  family: string;
  secret: string;
}

/** A new refresh token of `family` with a fresh secret. */
export function refreshToken(shard: number, family: string, secret: string): string {
  return `rt${shard}_${family}.${secret}`;
}
