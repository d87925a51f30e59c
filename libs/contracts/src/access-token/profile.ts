import { errors } from 'jose';

/**
 * The access-token profile: what every access token of this system is, for its issuer (the
 * session service) and every verifier (the API guard, the gateway, the session service's own
 * routes). One place, like the event contract beside it.
 */

/** The access token's claims (the public contract in DESIGN.md); nothing else is in it. */
export interface AccessTokenClaims {
  iss: string;
  sub: string;
  /** The services the token is for (one, or several). */
  aud: string | string[];
  /** Epoch seconds. */
  exp: number;
  /** Epoch seconds. */
  iat: number;
  jti: string;
  /** The session the token belongs to; what revocation events name. */
  sid: string;
  roles?: string[];
}

/** `typ` header of access tokens (RFC 9068), so no other JWT of ours passes for one. */
export const ACCESS_TOKEN_TYPE = 'at+jwt';

export const REQUIRED_ACCESS_TOKEN_CLAIMS = ['iss', 'sub', 'aud', 'exp', 'iat', 'jti', 'sid'];

/** How far apart the issuer's and a verifier's clocks may be. */
export const CLOCK_TOLERANCE_SECONDS = 5;

/** Longer than any token we issue; refused before parsing (a header flood costs nothing). */
export const MAX_ACCESS_TOKEN_LENGTH = 4_096;

/**
 * The key types access tokens are signed with, each pinned to its one algorithm: a token's
 * own `alg` never chooses (no `none`, no HS256 with a public key as the secret).
 */
export const ACCESS_TOKEN_KEY_TYPES = [
  { kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA' },
  { kty: 'EC', crv: 'P-256', alg: 'ES256' },
] as const;
export type AccessTokenAlgorithm = (typeof ACCESS_TOKEN_KEY_TYPES)[number]['alg'];
export const ACCESS_TOKEN_ALGORITHMS: AccessTokenAlgorithm[] = ACCESS_TOKEN_KEY_TYPES.map(
  (type) => type.alg,
);

/** Why a token was refused; short, safe to show to the client, never the token itself. */
export type InvalidAccessTokenReason =
  | 'malformed'
  | 'bad signature'
  | 'unknown key'
  | 'algorithm not allowed'
  | 'expired'
  | 'not yet valid'
  | 'wrong audience'
  | 'wrong issuer'
  | 'wrong type'
  | 'missing claim';

/** The one error verification throws, whatever was wrong. */
export class InvalidAccessTokenError extends Error {
  override readonly name = 'InvalidAccessTokenError';
  constructor(readonly reason: InvalidAccessTokenReason) {
    super(`invalid access token: ${reason}`);
  }
}

const isText = (value: unknown): value is string => typeof value === 'string' && value !== '';
const isTextList = (value: unknown): value is string[] =>
  Array.isArray(value) && value.every(isText);

/** The verified payload, typed; claims of the wrong shape make the token malformed. */
export function claimsOf(payload: Record<string, unknown>, iss: string): AccessTokenClaims {
  const { sub, exp, iat, jti, sid, roles, aud } = payload;
  if (!isText(sub) || !isText(jti) || !isText(sid)) throw new InvalidAccessTokenError('malformed');
  if (!isText(aud) && !isTextList(aud)) throw new InvalidAccessTokenError('malformed');
  if (typeof exp !== 'number' || typeof iat !== 'number')
    throw new InvalidAccessTokenError('malformed');
  if (roles !== undefined && !isTextList(roles)) throw new InvalidAccessTokenError('malformed');
  // `iss` was checked equal to ours, and `aud` to contain one of ours.
  return { iss, sub, aud, exp, iat, jti, sid, ...(roles && { roles }) };
}

/** Maps jose's errors to a short reason; never carries their payload or the token. */
export function reasonFor(error: unknown): InvalidAccessTokenReason {
  if (error instanceof InvalidAccessTokenError) return error.reason;
  if (error instanceof errors.JWTExpired) return 'expired';
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.reason === 'missing') return 'missing claim';
    switch (error.claim) {
      case 'aud':
        return 'wrong audience';
      case 'iss':
        return 'wrong issuer';
      case 'typ':
        return 'wrong type';
      case 'nbf':
      case 'iat':
        return 'not yet valid';
      default:
        return 'malformed';
    }
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'bad signature';
  if (error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JOSENotSupported)
    return 'algorithm not allowed';
  if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys)
    return 'unknown key';
  return 'malformed';
}

/** The token of an `Authorization: Bearer …` header (RFC 6750 syntax), or undefined. */
export function bearerToken(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  const match = value ? /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/i.exec(value.trim()) : null;
  return match?.[1];
}
