/** The access token's claims (the public contract in DESIGN.md); nothing else is in it. */
export interface AccessTokenClaims {
  iss: string;
  sub: string;
  aud: string;
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

/** How far apart the issuer's and a verifier's clocks may be. */
export const CLOCK_TOLERANCE_SECONDS = 5;

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

/** The one error `verifyAccessToken` throws, whatever was wrong. */
export class InvalidAccessTokenError extends Error {
  override readonly name = 'InvalidAccessTokenError';
  constructor(readonly reason: InvalidAccessTokenReason) {
    super(`invalid access token: ${reason}`);
  }
}
