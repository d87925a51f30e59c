import { Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { optional } from '@app/config';
import { createRemoteJWKSet, decodeJwt, errors } from 'jose';
import type { IdentityEnv, OidcIssuerConfig } from './identity.env';

/** Asymmetric only: no `none`, and no HMAC, whose "key" a JWKS would hand to anyone. */
export const ISSUER_TOKEN_ALGORITHMS = ['RS256', 'ES256', 'EdDSA'];
/** Seconds of clock difference allowed with an issuer (`exp`, `iat`, `nbf`). */
export const ISSUER_CLOCK_TOLERANCE_SECONDS = 5;
/** No token from an issuer (ID token, logout token) is longer than this. */
export const MAX_ISSUER_TOKEN_LENGTH = 16_384;

export interface TrustedIssuer {
  config: OidcIssuerConfig;
  keys: ReturnType<typeof createRemoteJWKSet>;
}

/**
 * The issuers in OIDC_ISSUERS, each with its own remote JWKS, shared by every verifier of
 * their tokens (ID tokens at sign-in, logout tokens at back-channel logout): one key set per
 * issuer for the process's life. jose caches the keys (10 min), and refetches early on an
 * unknown `kid` (a rotation) at most once per 30 s, so junk kids cannot flood the issuer.
 */
@Injectable()
export class TrustedIssuers {
  private readonly issuers: Map<string, TrustedIssuer>;

  constructor(config: ConfigService<IdentityEnv, true>) {
    const issuers = optional(config.get('OIDC_ISSUERS', { infer: true })) ?? [];
    this.issuers = new Map(
      issuers.map((issuer) => [
        issuer.issuer,
        { config: issuer, keys: createRemoteJWKSet(new URL(issuer.jwks_uri)) },
      ]),
    );
  }

  get size(): number {
    return this.issuers.size;
  }

  /**
   * The allow-listed issuer a token names in its (unverified) `iss`: it only picks which key
   * set to verify against. `fail` is called with why there is none.
   */
  of(token: string, fail: (reason: 'malformed' | 'untrusted_issuer') => never): TrustedIssuer {
    if (token.length > MAX_ISSUER_TOKEN_LENGTH) fail('malformed');
    let iss: unknown;
    try {
      ({ iss } = decodeJwt(token));
    } catch {
      return fail('malformed');
    }
    const trusted = typeof iss === 'string' ? this.issuers.get(iss) : undefined;
    return trusted ?? fail('untrusted_issuer');
  }
}

/** How jose refused an issuer's token, in the terms both verifiers use. */
export type JoseVerdict =
  | { reason: 'expired' | 'too_old' | 'not_yet_valid' | 'wrong_audience' | 'wrong_issuer' }
  | { reason: 'invalid_claims'; claim: string }
  | { reason: 'algorithm_not_allowed' | 'bad_signature' | 'unknown_key' | 'malformed' }
  /** Timeouts, refused connections, non-200 answers, a JWKS that is not one. */
  | { reason: 'issuer_unavailable' };

/** Translates an error thrown by jose's `jwtVerify` against a trusted issuer's key set. */
export function joseVerdict(error: unknown): JoseVerdict {
  if (error instanceof errors.JWTExpired) {
    return { reason: error.claim === 'iat' ? 'too_old' : 'expired' };
  }
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'aud') return { reason: 'wrong_audience' };
    if (error.claim === 'iss') return { reason: 'wrong_issuer' };
    if (error.claim === 'nbf') return { reason: 'not_yet_valid' };
    return { reason: 'invalid_claims', claim: error.claim };
  }
  if (error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JOSENotSupported)
    return { reason: 'algorithm_not_allowed' };
  if (error instanceof errors.JWSSignatureVerificationFailed) return { reason: 'bad_signature' };
  if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys)
    return { reason: 'unknown_key' };
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid)
    return { reason: 'malformed' };
  return { reason: 'issuer_unavailable' };
}
