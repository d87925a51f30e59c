/**
 * Opaque access tokens (phantom tokens): what a session signed in with `token_format: "opaque"`
 * gets instead of the access JWT. Only the session service can turn one into its JWT
 * (`POST /oauth/introspect` with `Accept: application/jwt`); see docs/ARCHITECTURE.md.
 */
export const OPAQUE_TOKEN_PREFIX = 'at_';

/** The formats a sign-in may ask for; `jwt` unless it says otherwise. */
export const TOKEN_FORMATS = ['jwt', 'opaque'] as const;

/** Whether `token` is shaped as an opaque access token (not whether it is valid). */
export const isOpaqueAccessToken = (token: string): boolean =>
  token.startsWith(OPAQUE_TOKEN_PREFIX);
