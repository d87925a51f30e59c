import { decodeProtectedHeader, jwtVerify, type JWTVerifyGetKey } from 'jose';
import {
  ACCESS_TOKEN_ALGORITHMS,
  ACCESS_TOKEN_TYPE,
  CLOCK_TOLERANCE_SECONDS,
  claimsOf,
  InvalidAccessTokenError,
  MAX_ACCESS_TOKEN_LENGTH,
  reasonFor,
  REQUIRED_ACCESS_TOKEN_CLAIMS,
  type AccessTokenClaims,
} from './profile';

export interface AccessTokenVerification {
  /** The issuer's keys by the token's `kid` (a JWKS resolver, or the issuer's own keys). */
  keys: JWTVerifyGetKey;
  issuer: string;
  /** A token must be for at least one of these. */
  audience: string | string[];
  /** The longest token lifetime: an older `iat` is refused whatever `exp` says. */
  maxTokenAgeSeconds: number;
  clockToleranceSeconds?: number;
  now?: () => number;
}

/**
 * Verifies an access token against the profile: a `kid` naming one of the issuer's keys and
 * only that key's algorithm, the signature, `typ`, `iss`, `aud`, `exp`/`nbf`/`iat` within the
 * tolerance and the longest lifetime, every required claim of the right shape. The claims, or
 * {@link InvalidAccessTokenError} with a short reason.
 */
export async function verifyAccessToken(
  token: string,
  options: AccessTokenVerification,
): Promise<AccessTokenClaims> {
  if (token.length > MAX_ACCESS_TOKEN_LENGTH) throw new InvalidAccessTokenError('malformed');
  let kid: unknown;
  try {
    ({ kid } = decodeProtectedHeader(token));
  } catch {
    throw new InvalidAccessTokenError('malformed');
  }
  // A JWKS resolver would pick "the" key of a set of one for a token without a `kid`.
  if (typeof kid !== 'string' || kid === '') throw new InvalidAccessTokenError('unknown key');
  const { keys, issuer, audience, maxTokenAgeSeconds, now } = options;
  try {
    const { payload } = await jwtVerify(token, keys, {
      algorithms: ACCESS_TOKEN_ALGORITHMS,
      issuer,
      audience,
      typ: ACCESS_TOKEN_TYPE,
      requiredClaims: REQUIRED_ACCESS_TOKEN_CLAIMS,
      clockTolerance: options.clockToleranceSeconds ?? CLOCK_TOLERANCE_SECONDS,
      // Also refuses an `iat` in the future (beyond the tolerance).
      maxTokenAge: maxTokenAgeSeconds,
      ...(now && { currentDate: new Date(now()) }),
    });
    return claimsOf(payload, issuer);
  } catch (error) {
    throw new InvalidAccessTokenError(reasonFor(error));
  }
}
