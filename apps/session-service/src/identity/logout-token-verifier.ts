import { Injectable, Optional } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import type { IdentityEnv } from './identity.env';
import { MAX_SID_LENGTH, MAX_SUB_LENGTH } from './oidc-verifier';
import {
  ISSUER_CLOCK_TOLERANCE_SECONDS,
  ISSUER_TOKEN_ALGORITHMS,
  joseVerdict,
  TrustedIssuers,
  type TrustedIssuer,
} from './trusted-issuers';

/** OpenID Connect Back-Channel Logout 1.0 §2.4: the member of `events` a logout token carries. */
export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
const MAX_JTI_LENGTH = 255;

export type LogoutTokenRejection =
  | 'malformed'
  | 'wrong_type'
  | 'untrusted_issuer'
  | 'algorithm_not_allowed'
  | 'unknown_key'
  | 'bad_signature'
  | 'expired'
  | 'not_yet_valid'
  | 'wrong_audience'
  | 'invalid_claims'
  | 'missing_event'
  | 'missing_subject'
  | 'nonce_present'
  /** Its `jti` was seen before (checked by the caller, against the replay cache). */
  | 'replayed'
  /** The issuer's JWKS could not be fetched: not the sender's fault (503, so it retries). */
  | 'issuer_unavailable';

/**
 * Every way a logout token is refused. The message is a short fixed reason: never the token,
 * never a claim value (both are attacker-supplied and end up in logs and responses).
 */
export class InvalidLogoutTokenError extends Error {
  override readonly name = 'InvalidLogoutTokenError';
  constructor(
    readonly reason: LogoutTokenRejection,
    message: string,
  ) {
    super(message);
  }
}

/** A verified logout token: which provider session (`sid`) or user (`sub`) signed out. */
export interface LogoutRequest {
  issuer: string;
  /** At least one of `sid` and `sub` is present. */
  sid?: string | undefined;
  sub?: string | undefined;
  jti: string;
  /** Until when (ms) the token could still be accepted: its `jti` is remembered that long. */
  replayUntil: number;
}

const FIXED: Record<Exclude<LogoutTokenRejection, 'invalid_claims'>, string> = {
  malformed: 'logout token is malformed',
  wrong_type: 'logout token has the wrong "typ" (expected logout+jwt)',
  untrusted_issuer: 'logout token issuer is not trusted',
  algorithm_not_allowed: 'logout token algorithm is not allowed',
  unknown_key: 'logout token is signed with a key the issuer does not publish',
  bad_signature: 'logout token signature is invalid',
  expired: 'logout token has expired',
  not_yet_valid: 'logout token is not valid yet',
  wrong_audience: 'logout token is not for this client',
  missing_event: 'logout token has no back-channel logout event',
  missing_subject: 'logout token has neither "sid" nor "sub"',
  nonce_present: 'logout token must not carry a "nonce"',
  replayed: 'logout token was received before',
  issuer_unavailable: 'the issuer’s keys could not be fetched',
};

function refuse(reason: Exclude<LogoutTokenRejection, 'invalid_claims'>): never {
  throw new InvalidLogoutTokenError(reason, FIXED[reason]);
}

function invalidClaim(claim: string): never {
  throw new InvalidLogoutTokenError(
    'invalid_claims',
    `logout token has an invalid "${claim}" claim`,
  );
}

/** Claims whose names may appear in a message (never a value). */
const NAMED_CLAIMS = new Set(['iss', 'aud', 'iat', 'exp', 'jti', 'events', 'sid', 'sub', 'nbf']);

/** Translates jose's verdicts into ours. */
function rejection(error: unknown): InvalidLogoutTokenError {
  if (error instanceof InvalidLogoutTokenError) return error;
  const verdict = joseVerdict(error);
  if (verdict.reason === 'invalid_claims') {
    return new InvalidLogoutTokenError(
      'invalid_claims',
      NAMED_CLAIMS.has(verdict.claim)
        ? `logout token has an invalid "${verdict.claim}" claim`
        : 'logout token has invalid claims',
    );
  }
  // `too_old` needs maxTokenAge and `wrong_issuer` a mismatch with the issuer `iss` chose:
  // neither is asked for here.
  if (verdict.reason === 'too_old' || verdict.reason === 'wrong_issuer') {
    return new InvalidLogoutTokenError('invalid_claims', 'logout token has invalid claims');
  }
  return new InvalidLogoutTokenError(verdict.reason, FIXED[verdict.reason]);
}

/** RFC 8725 §3.11: `typ` may leave out `application/`; compared case-insensitively (RFC 2045). */
function checkType(token: string): void {
  let typ: unknown;
  try {
    ({ typ } = decodeProtectedHeader(token));
  } catch {
    refuse('malformed');
  }
  if (typ === undefined) return;
  const type = typeof typ === 'string' ? typ.toLowerCase() : '';
  if (type !== 'logout+jwt' && type !== 'application/logout+jwt') refuse('wrong_type');
}

/**
 * Verifies logout tokens (OpenID Connect Back-Channel Logout 1.0 §2.6) from the issuers in
 * OIDC_ISSUERS, against the same per-issuer key sets as ID tokens: a `typ` of `logout+jwt` or
 * none (an explicit other type, `JWT` included, is refused so that an ID token is never taken
 * for a logout token), an asymmetric algorithm, the issuer's signature, `iss`, `aud` = our
 * client id there, `iat`, `exp` (unexpired), `jti`, the back-channel logout event (a JSON
 * object), `sid` and/or `sub`, and no `nonce`. The `jti` replay check is the caller's (it
 * needs the shared store).
 */
@Injectable()
export class LogoutTokenVerifier {
  private readonly issuers: TrustedIssuers;

  constructor(config: ConfigService<IdentityEnv, true>, @Optional() issuers?: TrustedIssuers) {
    this.issuers = issuers ?? new TrustedIssuers(config);
  }

  async verify(token: string): Promise<LogoutRequest> {
    const trusted = this.issuerOf(token);
    checkType(token);
    const { issuer, audience } = trusted.config;
    let claims: JWTPayload;
    try {
      ({ payload: claims } = await jwtVerify(token, trusted.keys, {
        algorithms: ISSUER_TOKEN_ALGORITHMS,
        issuer,
        audience,
        clockTolerance: ISSUER_CLOCK_TOLERANCE_SECONDS,
        requiredClaims: ['iat', 'exp', 'jti'],
      }));
    } catch (error) {
      throw rejection(error);
    }
    const { jti, exp, sid, sub } = claims;
    if (typeof jti !== 'string' || jti.length === 0 || jti.length > MAX_JTI_LENGTH)
      invalidClaim('jti');
    const events = claims['events'];
    if (!isObject(events) || !isObject(events[BACKCHANNEL_LOGOUT_EVENT])) refuse('missing_event');
    if (claims['nonce'] !== undefined) refuse('nonce_present');
    if (sid === undefined && sub === undefined) refuse('missing_subject');
    if (sid !== undefined && !isText(sid, MAX_SID_LENGTH)) invalidClaim('sid');
    if (sub !== undefined && !isText(sub, MAX_SUB_LENGTH)) invalidClaim('sub');
    const replayUntil = ((exp ?? 0) + ISSUER_CLOCK_TOLERANCE_SECONDS) * 1000;
    return {
      issuer,
      ...(sid === undefined ? {} : { sid }),
      ...(sub === undefined ? {} : { sub }),
      jti,
      replayUntil,
    };
  }

  private issuerOf(token: string): TrustedIssuer {
    return this.issuers.of(token, (reason) => refuse(reason));
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isText(value: unknown, max: number): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= max;
}
