import {
  bearerToken,
  InvalidAccessTokenError,
  type AccessTokenClaims,
  type RevocationStore,
} from '@app/contracts';
import type { PartitionFreshness } from './view/freshness';
import type { GuardMetrics, RejectionReason } from './guard-metrics';
import type { TokenVerifier } from './verification/token-verifier';

/** Who a request is from: the verified claims of its access token. */
export type VerifiedSession = AccessTokenClaims;

export type GuardOutcome =
  | { ok: true; session: VerifiedSession; stale: boolean }
  | {
      ok: false;
      status: 401 | 403 | 503;
      error: 'invalid_token' | 'insufficient_scope' | 'temporarily_unavailable';
      description: string;
      reason: RejectionReason;
    };

export type GuardRejection = Extract<GuardOutcome, { ok: false }>;

export interface AuthenticatorOptions {
  verifier: Pick<TokenVerifier, 'cached' | 'verify'>;
  store: RevocationStore;
  freshness: PartitionFreshness;
  metrics: GuardMetrics;
  /** Serve on a stale view (outcome marked `stale`) instead of 503. */
  failOpen: boolean;
  /** Called for each request served on a stale view (fail-open only). */
  onServedStale?: () => void;
}

export const rejection = (
  status: GuardRejection['status'],
  reason: RejectionReason,
  description: string,
): GuardRejection => ({
  ok: false,
  status,
  reason,
  description,
  error:
    status === 401
      ? 'invalid_token'
      : status === 403
        ? 'insufficient_scope'
        : 'temporarily_unavailable',
});

const DESCRIPTIONS: Record<'session_revoked' | 'user_revoked', string> = {
  session_revoked: 'session revoked',
  user_revoked: 'all sessions of the user were revoked',
};

/**
 * The decision for one request, in this order: a bearer token; valid (from the verified-token
 * cache, or by its signature and claims); not revoked (checked on every request, cached or
 * not); a fresh revocation view (else 503, or served and marked when failing open); the
 * required roles (else 403). Only an unseen token costs a signature verification.
 */
export class Authenticator {
  constructor(private readonly options: AuthenticatorOptions) {}

  /**
   * The outcome, synchronously when the token is in the verified-token cache (the common
   * case costs no promise), else once its signature is verified.
   */
  decide(
    authorization: string | string[] | undefined,
    requiredRoles: readonly string[] = [],
  ): GuardOutcome | Promise<GuardOutcome> {
    const { verifier, metrics } = this.options;
    const token = bearerToken(authorization);
    if (token === undefined) {
      // `Bearer <something>` that is no token is a bad token; anything else is no credentials.
      const value = Array.isArray(authorization) ? authorization[0] : authorization;
      return this.count(
        /^\s*Bearer\s+\S/i.test(value ?? '')
          ? rejection(401, 'invalid_token', 'malformed')
          : rejection(401, 'missing_token', 'missing bearer token'),
      );
    }
    const cached = verifier.cached(token);
    if (cached !== undefined) {
      metrics.cacheHits.inc();
      return this.count(this.check(cached, requiredRoles));
    }
    metrics.cacheMisses.inc();
    return verifier.verify(token).then(
      (session) => this.count(this.check(session, requiredRoles)),
      (error: unknown) => {
        if (error instanceof InvalidAccessTokenError)
          return this.count(rejection(401, 'invalid_token', error.reason));
        throw error;
      },
    );
  }

  /** What is checked on every request, cached token or not. */
  private check(session: VerifiedSession, requiredRoles: readonly string[]): GuardOutcome {
    const { store, freshness, metrics } = this.options;
    const revoked = store.check(session);
    if (revoked !== undefined) return rejection(401, revoked, DESCRIPTIONS[revoked]);
    let stale = false;
    if (!freshness.isFresh()) {
      if (!this.options.failOpen)
        return rejection(503, 'stale_view', 'revocation view is stale, retry shortly');
      stale = true;
      metrics.servedStale.inc();
      this.options.onServedStale?.();
    }
    if (requiredRoles.length > 0) {
      const roles = session.roles ?? [];
      const missing = requiredRoles.filter((role) => !roles.includes(role));
      if (missing.length > 0)
        return rejection(403, 'insufficient_role', `requires role ${missing.join(', ')}`);
    }
    return { ok: true, session, stale };
  }

  private count(outcome: GuardOutcome): GuardOutcome {
    if (!outcome.ok) this.options.metrics.rejections.inc({ reason: outcome.reason });
    return outcome;
  }
}
