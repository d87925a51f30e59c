import { verifyAccessToken, type AccessTokenClaims } from '@app/contracts';
import type { JWTVerifyGetKey } from 'jose';
import type { VerifiedTokenCache } from './verified-token-cache';

export interface TokenVerifierOptions {
  /** The issuer's keys by `kid` (its JWKS, in production: see `RemoteKeys`). */
  keys: JWTVerifyGetKey;
  issuer: string;
  /** A token must be for at least one of these. */
  audience: string | string[];
  /** Tolerance for `exp`, `nbf` and `iat` between the issuer's and our clock. */
  clockToleranceSeconds: number;
  /** The longest access-token lifetime: older `iat`s are refused even if `exp` says otherwise. */
  maxTokenAgeSeconds: number;
  cache: VerifiedTokenCache;
  now?: () => number;
}

/**
 * Verifies access tokens by the access-token profile (`verifyAccessToken` of the contracts)
 * and remembers verified tokens, so a repeat costs a lookup. Throws `InvalidAccessTokenError`.
 */
export class TokenVerifier {
  constructor(private readonly options: TokenVerifierOptions) {}

  /** The claims of a token seen and verified before (still unexpired), without any crypto. */
  cached(token: string): AccessTokenClaims | undefined {
    return this.options.cache.get(token);
  }

  async verify(token: string): Promise<AccessTokenClaims> {
    const { clockToleranceSeconds, maxTokenAgeSeconds } = this.options;
    const claims = await verifyAccessToken(token, this.options);
    // Served from the cache no longer than verification would accept it: until `exp`, or until
    // its `iat` is older than the max token age (the store forgets revocations after that age).
    const ageLimit = claims.iat + maxTokenAgeSeconds + clockToleranceSeconds;
    this.options.cache.set(token, claims, Math.min(claims.exp, ageLimit) * 1000);
    return claims;
  }
}
