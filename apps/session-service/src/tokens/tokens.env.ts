import { csv, positiveInt, secret } from '@app/config';
import { z } from 'zod';

/**
 * Access-token settings of the session service, to be merged into its environment schema
 * (`.extend(tokensEnv.shape)`).
 *
 * SIGNING_KEYS lists private keys: the FIRST one signs; every listed key is published in the
 * JWKS and accepted, so a key that stopped signing keeps its tokens valid while it is listed.
 * Rotating without downtime:
 *   1. Add the new key SECOND: published, not signing yet. Wait the JWKS cache lifetime
 *      (`max-age=300`) so no API meets a token whose `kid` it has not fetched yet (not needed
 *      for APIs that refetch the JWKS on an unknown `kid`).
 *   2. Move it FIRST and keep the old key after it: new tokens use the new key.
 *   3. Once every instance signs with the new key, wait ACCESS_TOKEN_TTL_SECONDS plus the clock
 *      tolerance (5 s): the old key's last token has expired, and the old key can be removed.
 */
export const tokensEnv = z.object({
  ISSUER: z
    .url({ protocol: /^https?$/ })
    .refine((value) => !value.endsWith('/'), 'must not end with "/"')
    .refine((value) => !/[?#]/.test(value), 'must have no query or fragment')
    .default('http://127.0.0.1:3000')
    .describe(
      '`iss` of every token and base of the issuer metadata URLs (its public URL; no trailing slash)',
    ),
  ACCESS_TOKEN_AUDIENCE: csv
    .default(['session-revocation-apis'])
    .describe('`aud` of every access token: the services it is for (comma-separated)'),
  SESSION_SERVICE_AUDIENCE: z
    .string()
    .min(1)
    .optional()
    .describe(
      "the audience this service's own routes require (default: the first of ACCESS_TOKEN_AUDIENCE)",
    ),
  ACCESS_TOKEN_TTL_SECONDS: positiveInt.default(300).describe('access-token lifetime'),
  // The two key variables are checked by `loadSigningKeys`, not here: an env validation error
  // echoes the variable's value, and these hold private keys.
  SIGNING_KEYS: secret(
    z
      .string()
      .optional()
      .describe(
        'JSON array of private JWKs (Ed25519 or P-256, each with a `kid`); the first signs, all are published; default: a key made at start',
      ),
  ),
  SIGNING_KEYS_FILE: z
    .string()
    .optional()
    .describe('file holding that JSON array (e.g. a mounted secret), instead of SIGNING_KEYS'),
});

export type TokensEnv = z.output<typeof tokensEnv>;
