import { Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { optional } from '@app/config';
import { createRemoteJWKSet, decodeJwt, errors, jwtVerify, type JWTPayload } from 'jose';
import { createHash } from 'node:crypto';
import type { IdentityEnv, OidcIssuerConfig } from './identity.env';

/** Asymmetric only: no `none`, and no HMAC, whose "key" a JWKS would hand to anyone. */
export const ID_TOKEN_ALGORITHMS = ['RS256', 'ES256', 'EdDSA'];
const CLOCK_TOLERANCE_SECONDS = 5;
/** OpenID Connect Core §2: `sub` is at most 255 ASCII characters. */
const MAX_SUB_LENGTH = 255;
const MAX_TOKEN_LENGTH = 16_384;

export type IdTokenRejection =
  | 'malformed'
  | 'untrusted_issuer'
  | 'algorithm_not_allowed'
  | 'unknown_key'
  | 'bad_signature'
  | 'expired'
  | 'not_yet_valid'
  | 'wrong_audience'
  | 'invalid_claims'
  | 'missing_sub'
  | 'nonce_mismatch'
  | 'too_old'
  /** Already used to open a session: an ID token opens at most one. */
  | 'replayed'
  /** The issuer's JWKS could not be fetched: not the client's fault (answer 503, not 401). */
  | 'issuer_unavailable';

/**
 * Every way an ID token is refused. The message is a short fixed reason: never the token,
 * never a claim value (both are attacker-supplied and end up in logs and responses).
 */
export class InvalidIdTokenError extends Error {
  override readonly name = 'InvalidIdTokenError';
  constructor(
    readonly reason: IdTokenRejection,
    message: string,
  ) {
    super(message);
  }
}

export interface VerifiedIdentity {
  issuer: string;
  sub: string;
  claims: JWTPayload;
  /** What makes this ID token one-use: remembered until `until` (ms), refused if seen again. */
  use: { id: string; until: number };
}

interface TrustedIssuer {
  config: OidcIssuerConfig;
  keys: ReturnType<typeof createRemoteJWKSet>;
}

/** Translates jose's verdicts into ours. */
function rejection(error: unknown): InvalidIdTokenError {
  if (error instanceof InvalidIdTokenError) return error;
  const reject = (reason: IdTokenRejection, message: string) =>
    new InvalidIdTokenError(reason, message);
  if (error instanceof errors.JWTExpired) {
    return error.claim === 'iat'
      ? reject('too_old', 'ID token was issued too long ago')
      : reject('expired', 'ID token has expired');
  }
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'aud') return reject('wrong_audience', 'ID token is not for this client');
    if (error.claim === 'sub') return reject('missing_sub', 'ID token has no subject');
    if (error.claim === 'nbf') return reject('not_yet_valid', 'ID token is not valid yet');
    return reject('invalid_claims', `ID token has an invalid "${error.claim}" claim`);
  }
  if (error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JOSENotSupported)
    return reject('algorithm_not_allowed', 'ID token algorithm is not allowed');
  if (error instanceof errors.JWSSignatureVerificationFailed)
    return reject('bad_signature', 'ID token signature is invalid');
  if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys)
    return reject('unknown_key', 'ID token is signed with a key the issuer does not publish');
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid)
    return reject('malformed', 'ID token is malformed');
  // Timeouts, refused connections, non-200 answers, a JWKS that is not one.
  return reject('issuer_unavailable', 'the issuer’s keys could not be fetched');
}

/**
 * Verifies ID tokens from the issuers in OIDC_ISSUERS, each against its own JWKS. The
 * token's unverified `iss` only picks which allow-listed issuer to verify against; nothing
 * else is read before the signature is checked.
 */
@Injectable()
export class OidcVerifier {
  private readonly issuers: Map<string, TrustedIssuer>;
  private readonly maxAgeSeconds: number;

  constructor(
    config: ConfigService<IdentityEnv & { OIDC_ID_TOKEN_MAX_AGE_SECONDS: number }, true>,
  ) {
    this.maxAgeSeconds =
      optional(config.get('OIDC_ID_TOKEN_MAX_AGE_SECONDS', { infer: true })) ?? 300;
    const issuers = optional(config.get('OIDC_ISSUERS', { infer: true })) ?? [];
    // One key set per issuer for the process's life: jose caches the keys (10 min), and refetches
    // early on an unknown `kid` (a rotation) at most once per 30 s, so junk kids cannot flood the issuer.
    this.issuers = new Map(
      issuers.map((issuer) => [
        issuer.issuer,
        { config: issuer, keys: createRemoteJWKSet(new URL(issuer.jwks_uri)) },
      ]),
    );
  }

  /** True when at least one issuer is trusted (the OIDC sign-in is offered). */
  get enabled(): boolean {
    return this.issuers.size > 0;
  }

  async verify(idToken: string, nonce?: string): Promise<VerifiedIdentity> {
    const trusted = this.issuerOf(idToken);
    const { issuer, audience } = trusted.config;
    let claims: JWTPayload;
    try {
      ({ payload: claims } = await jwtVerify(idToken, trusted.keys, {
        algorithms: ID_TOKEN_ALGORITHMS,
        issuer,
        audience,
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        requiredClaims: ['sub', 'exp', 'iat'],
        // A fresh token only (also refuses an `iat` in the future): with the replay check,
        // a leaked ID token cannot be turned into sessions later on.
        maxTokenAge: this.maxAgeSeconds,
      }));
    } catch (error) {
      throw rejection(error);
    }
    const { sub } = claims;
    if (typeof sub !== 'string' || sub.length === 0 || sub.length > MAX_SUB_LENGTH) {
      throw new InvalidIdTokenError('missing_sub', 'ID token has no usable subject');
    }
    // OpenID Connect Core §3.1.3.7: with several audiences, the authorized party must be us.
    const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if ((audiences.length > 1 || claims['azp'] !== undefined) && claims['azp'] !== audience) {
      throw new InvalidIdTokenError('wrong_audience', 'ID token is not for this client');
    }
    if (trusted.config.require_nonce && (nonce === undefined || claims['nonce'] === undefined)) {
      throw new InvalidIdTokenError('nonce_mismatch', 'this issuer’s ID tokens need a nonce');
    }
    if (nonce !== undefined && claims['nonce'] !== nonce) {
      throw new InvalidIdTokenError('nonce_mismatch', 'ID token nonce does not match');
    }
    // By `jti` where the issuer sets one, else by the token itself.
    const unique = typeof claims.jti === 'string' ? `jti:${claims.jti}` : `token:${idToken}`;
    const id = createHash('sha256').update(issuer).update('\0').update(unique).digest('hex');
    const until = ((claims.exp ?? 0) + CLOCK_TOLERANCE_SECONDS) * 1000;
    return { issuer, sub, claims, use: { id, until } };
  }

  private issuerOf(idToken: string): TrustedIssuer {
    if (idToken.length > MAX_TOKEN_LENGTH) {
      throw new InvalidIdTokenError('malformed', 'ID token is too long');
    }
    let iss: unknown;
    try {
      ({ iss } = decodeJwt(idToken));
    } catch {
      throw new InvalidIdTokenError('malformed', 'ID token is malformed');
    }
    const trusted = typeof iss === 'string' ? this.issuers.get(iss) : undefined;
    if (!trusted)
      throw new InvalidIdTokenError('untrusted_issuer', 'ID token issuer is not trusted');
    return trusted;
  }
}
