import { Inject, Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { optional } from '@app/config';
import { errors, type JWSHeaderParameters, SignJWT } from 'jose';
import { randomUUID } from 'node:crypto';
import {
  ACCESS_TOKEN_TYPE,
  type AccessTokenClaims,
  InvalidAccessTokenError,
  verifyAccessToken,
} from '@app/contracts';
import { CLOCK, type Clock } from './clock';
import { type PublicJwk, SigningKeys } from './signing-keys';
import type { TokensEnv } from './tokens.env';

export interface IssueAccessTokenInput {
  sub: string;
  sid: string;
  roles?: string[];
  /** Epoch seconds: the session's absolute expiry; no token outlives its session. */
  notAfter?: number;
  /**
   * Epoch seconds: the token's `iat` when the caller fixed it (the session's Redis step did,
   * so that a "log out everywhere" racing the signing covers the token); now otherwise.
   */
  issuedAt?: number;
}

export interface IssuedAccessToken {
  token: string;
  /** Seconds from now until `exp`, for the `expires_in` of a token response. */
  expiresIn: number;
  /** Epoch seconds: the token's `exp`. */
  expiresAt: number;
  jti: string;
}

/** Signs access tokens with the active key; verifies them against every published key. */
@Injectable()
export class TokenService {
  private readonly issuer: string;
  /** What tokens are issued for, and what this service requires of the tokens it is shown. */
  private readonly audiences: string[];
  private readonly ownAudience: string;
  private readonly ttlSeconds: number;

  constructor(
    private readonly keys: SigningKeys,
    config: ConfigService<TokensEnv, true>,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {
    this.issuer = config.get('ISSUER', { infer: true });
    this.audiences = config.get('ACCESS_TOKEN_AUDIENCE', { infer: true });
    this.ownAudience =
      optional(config.get('SESSION_SERVICE_AUDIENCE', { infer: true })) ?? this.audiences[0] ?? '';
    this.ttlSeconds = config.get('ACCESS_TOKEN_TTL_SECONDS', { infer: true });
  }

  async issueAccessToken({
    sub,
    sid,
    roles,
    notAfter,
    issuedAt,
  }: IssueAccessTokenInput): Promise<IssuedAccessToken> {
    const now = Math.floor(this.clock.now() / 1000);
    const iat = issuedAt ?? now;
    const exp = Math.min(iat + this.ttlSeconds, Math.floor(notAfter ?? Infinity));
    // A token that is born expired would only fail later and further away; the caller must
    // not issue for a session that has already ended.
    if (!(exp > iat)) throw new RangeError('notAfter must be a time in the future');
    const jti = randomUUID();
    const { kid, alg, privateKey } = this.keys.active;
    const token = await new SignJWT({ sid, ...(roles && { roles }) })
      .setProtectedHeader({ alg, kid, typ: ACCESS_TOKEN_TYPE })
      .setIssuer(this.issuer)
      .setSubject(sub)
      .setAudience(this.audiences.length === 1 ? (this.audiences[0] ?? '') : this.audiences)
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .setJti(jti)
      .sign(privateKey);
    return { token, expiresIn: exp - now, expiresAt: exp, jti };
  }

  /**
   * The token's claims when this service issued it, for this service's own audience, and it is
   * valid now: the access-token profile's one verifier, with this service's own keys.
   */
  verifyAccessToken(token: string): Promise<AccessTokenClaims> {
    return verifyAccessToken(token, {
      keys: this.keyFor,
      issuer: this.issuer,
      audience: this.ownAudience,
      maxTokenAgeSeconds: this.ttlSeconds,
      now: () => this.clock.now(),
    });
  }

  jwks(): { keys: PublicJwk[] } {
    return this.keys.jwks();
  }

  /** Only a published key verifies, chosen by `kid`, and only with that key's own algorithm. */
  private readonly keyFor = (header: JWSHeaderParameters) => {
    const key = typeof header.kid === 'string' ? this.keys.verificationKey(header.kid) : undefined;
    if (!key) throw new errors.JWKSNoMatchingKey();
    if (header.alg !== key.alg) throw new InvalidAccessTokenError('algorithm not allowed');
    return key.publicKey;
  };
}
