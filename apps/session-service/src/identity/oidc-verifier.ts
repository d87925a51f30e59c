import { Injectable, Optional } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { optional } from '@app/config';
import { jwtVerify, type JWTPayload } from 'jose';
import { createHash } from 'node:crypto';
import type { IdentityEnv } from './identity.env';
import {
  ISSUER_CLOCK_TOLERANCE_SECONDS,
  ISSUER_TOKEN_ALGORITHMS,
  joseVerdict,
  TrustedIssuers,
  type TrustedIssuer,
} from './trusted-issuers';

/** Asymmetric only: no `none`, and no HMAC, whose "key" a JWKS would hand to anyone. */
export const ID_TOKEN_ALGORITHMS = ISSUER_TOKEN_ALGORITHMS;
const CLOCK_TOLERANCE_SECONDS = ISSUER_CLOCK_TOLERANCE_SECONDS;
/** OpenID Connect Core §2: `sub` is at most 255 ASCII characters. */
export const MAX_SUB_LENGTH = 255;
/** Our bound on a provider's `sid` (the specifications set none; providers use tens of characters). */
export const MAX_SID_LENGTH = 255;

/** A usable `sid` claim, or undefined (an unusable one is ignored at sign-in: no logout by sid). */
export function providerSessionId(sid: unknown): string | undefined {
  return typeof sid === 'string' && sid.length > 0 && sid.length <= MAX_SID_LENGTH
    ? sid
    : undefined;
}

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
  /** The provider's session (`sid` claim, OpenID Connect Front/Back-Channel Logout), if given. */
  sid?: string | undefined;
  claims: JWTPayload;
  /** What makes this ID token one-use: remembered until `until` (ms), refused if seen again. */
  use: { id: string; until: number };
}

/** Translates jose's verdicts into ours. */
function rejection(error: unknown): InvalidIdTokenError {
  if (error instanceof InvalidIdTokenError) return error;
  const reject = (reason: IdTokenRejection, message: string) =>
    new InvalidIdTokenError(reason, message);
  const verdict = joseVerdict(error);
  switch (verdict.reason) {
    case 'too_old':
      return reject('too_old', 'ID token was issued too long ago');
    case 'expired':
      return reject('expired', 'ID token has expired');
    case 'wrong_audience':
      return reject('wrong_audience', 'ID token is not for this client');
    case 'not_yet_valid':
      return reject('not_yet_valid', 'ID token is not valid yet');
    case 'wrong_issuer':
      return reject('invalid_claims', 'ID token has an invalid "iss" claim');
    case 'invalid_claims':
      if (verdict.claim === 'sub') return reject('missing_sub', 'ID token has no subject');
      return reject('invalid_claims', `ID token has an invalid "${verdict.claim}" claim`);
    case 'algorithm_not_allowed':
      return reject('algorithm_not_allowed', 'ID token algorithm is not allowed');
    case 'bad_signature':
      return reject('bad_signature', 'ID token signature is invalid');
    case 'unknown_key':
      return reject('unknown_key', 'ID token is signed with a key the issuer does not publish');
    case 'malformed':
      return reject('malformed', 'ID token is malformed');
    case 'issuer_unavailable':
      return reject('issuer_unavailable', 'the issuer’s keys could not be fetched');
  }
}

/**
 * Verifies ID tokens from the issuers in OIDC_ISSUERS, each against its own JWKS. The
 * token's unverified `iss` only picks which allow-listed issuer to verify against; nothing
 * else is read before the signature is checked.
 */
@Injectable()
export class OidcVerifier {
  private readonly issuers: TrustedIssuers;
  private readonly maxAgeSeconds: number;

  constructor(
    config: ConfigService<IdentityEnv & { OIDC_ID_TOKEN_MAX_AGE_SECONDS: number }, true>,
    @Optional() issuers?: TrustedIssuers,
  ) {
    this.maxAgeSeconds =
      optional(config.get('OIDC_ID_TOKEN_MAX_AGE_SECONDS', { infer: true })) ?? 300;
    this.issuers = issuers ?? new TrustedIssuers(config);
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
    // OpenID Connect Core §3.1.3.7: with several audiences, the authorized party must be us
    // (one of our clients).
    const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    const ours: unknown[] = [audience].flat();
    if ((audiences.length > 1 || claims['azp'] !== undefined) && !ours.includes(claims['azp'])) {
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
    const sid = providerSessionId(claims['sid']);
    return { issuer, sub, sid, claims, use: { id, until } };
  }

  private issuerOf(idToken: string): TrustedIssuer {
    return this.issuers.of(idToken, (reason) => {
      throw reason === 'malformed'
        ? new InvalidIdTokenError('malformed', 'ID token is malformed')
        : new InvalidIdTokenError('untrusted_issuer', 'ID token issuer is not trusted');
    });
  }
}
