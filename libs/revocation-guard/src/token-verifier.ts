import { jwtVerify, type JWSHeaderParameters } from 'jose';
import {
  ACCESS_TOKEN_TYPE,
  claimsOf,
  InvalidAccessTokenError,
  reasonFor,
  type AccessTokenClaims,
} from './access-token';
import { ACCESS_TOKEN_ALGORITHMS, type JwksKeySet } from './jwks-key-set';
import type { VerifiedTokenCache } from './verified-token-cache';

/** Longer than any token we issue; refused before parsing (a header flood costs nothing). */
export const MAX_TOKEN_LENGTH = 4_096;

const REQUIRED_CLAIMS = ['iss', 'sub', 'aud', 'exp', 'iat', 'jti', 'sid'];

export interface TokenVerifierOptions {
  /** Where keys come from by `kid` (the issuer's JWKS, in production). */
  keys: Pick<JwksKeySet, 'get' | 'getAfterRefetch'>;
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
 * Verifies access tokens against the issuer's JWKS — signature with the key's own algorithm,
 * `typ`, `iss`, `aud`, `exp`/`nbf`/`iat` with a small tolerance, required claims — and
 * remembers verified tokens so a repeat costs a lookup. Throws {@link InvalidAccessTokenError}.
 */
export class TokenVerifier {
  constructor(private readonly options: TokenVerifierOptions) {}

  /** The claims of a token seen and verified before (still unexpired), without any crypto. */
  cached(token: string): AccessTokenClaims | undefined {
    return this.options.cache.get(token);
  }

  async verify(token: string): Promise<AccessTokenClaims> {
    if (token.length > MAX_TOKEN_LENGTH) throw new InvalidAccessTokenError('malformed');
    const { issuer, audience, clockToleranceSeconds, maxTokenAgeSeconds, now } = this.options;
    let claims: AccessTokenClaims;
    try {
      const { payload } = await jwtVerify(token, this.keyFor, {
        algorithms: ACCESS_TOKEN_ALGORITHMS,
        issuer,
        audience,
        typ: ACCESS_TOKEN_TYPE,
        requiredClaims: REQUIRED_CLAIMS,
        clockTolerance: clockToleranceSeconds,
        maxTokenAge: maxTokenAgeSeconds,
        ...(now && { currentDate: new Date(now()) }),
      });
      claims = claimsOf(payload, issuer);
    } catch (error) {
      throw new InvalidAccessTokenError(reasonFor(error));
    }
    // Served from the cache no longer than `verify` would accept it: until `exp`, or until its
    // `iat` is older than the max token age (the store forgets revocations after that age).
    const ageLimit = claims.iat + maxTokenAgeSeconds + clockToleranceSeconds;
    this.options.cache.set(token, claims, Math.min(claims.exp, ageLimit) * 1000);
    return claims;
  }

  /** Only a published key verifies, chosen by `kid`, and only with that key's own algorithm. */
  private readonly keyFor = async (header: JWSHeaderParameters) => {
    if (typeof header.kid !== 'string') throw new InvalidAccessTokenError('unknown key');
    const key =
      this.options.keys.get(header.kid) ?? (await this.options.keys.getAfterRefetch(header.kid));
    if (!key) throw new InvalidAccessTokenError('unknown key');
    if (header.alg !== key.alg) throw new InvalidAccessTokenError('algorithm not allowed');
    return key.key;
  };
}
