import type { ConfigService } from '@nestjs/config';
import { flag, isInsecureRemoteUrl, jsonEnv, secret } from '@app/config';
import { z } from 'zod';

/** An issuer's URLs: https, or plain http on loopback or with ALLOW_INSECURE_HTTP (checked by
 * `identityEnvRules`, which sees that variable). */
const issuerUrl = z.url({ protocol: /^https?$/ });

/** One trusted OpenID Connect issuer. Strict: a misspelt key is an error, not ignored. */
export const oidcIssuerConfig = z
  .strictObject({
    /** Exactly the `iss` its ID tokens carry. */
    issuer: issuerUrl,
    jwks_uri: issuerUrl,
    /** Our client id at that issuer, or the ids of each of our clients there (several
     * gateways, each its own client): ID and logout tokens must be addressed to one of them. */
    audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1).max(32)]),
    /** Claim holding the user's roles at the issuer (an array of strings). */
    roles_claim: z.string().min(1).optional(),
    /** Role in `roles_claim` that makes the user an admin here. */
    admin_role: z.string().min(1).optional(),
    /** ID tokens must carry a `nonce`, and the client must send the one it used (code flows). */
    require_nonce: z.boolean().optional(),
  })
  .refine((config) => !config.admin_role || config.roles_claim, {
    error: 'admin_role needs roles_claim',
    path: ['admin_role'],
  });
export type OidcIssuerConfig = z.output<typeof oidcIssuerConfig>;

const oidcIssuers = jsonEnv(
  z
    .array(oidcIssuerConfig)
    .refine(
      (list) => new Set(list.map((entry) => entry.issuer)).size === list.length,
      'lists an issuer twice',
    ),
);

/**
 * Sign-in settings of the session service, to be merged into its environment schema
 * (`.extend(identityEnv.shape)`, then `.superRefine(identityEnvRules)`).
 */
export const identityEnv = z.object({
  // USERS is parsed by `loadUserRecords`, not here: an env validation error echoes the
  // variable's value, and this one holds password hashes.
  USERS: secret(
    z
      .string()
      .optional()
      .describe(
        'JSON array of `{ id, username, password_hash, roles, disabled? }` (and `{ id: "oidc-…", disabled: true }`): the production users',
      ),
  ),
  USERS_FILE: z
    .string()
    .min(1)
    .optional()
    .describe(
      'file holding that JSON array (e.g. a mounted secret), instead of USERS; read again when it changes',
    ),
  USERS_FILE_RELOAD_SECONDS: z.coerce
    .number()
    .int()
    .min(1)
    .max(3_600)
    .default(5)
    .describe('how often USERS_FILE is checked for changes (a change applies at the next refresh)'),
  SEED_DEMO_USERS: flag
    .default(false)
    .describe('loads alice, bob and admin with well-known passwords; refused in production'),
  OIDC_ISSUERS: oidcIssuers
    .optional()
    .describe(
      'JSON array of trusted OpenID Connect issuers: `{ issuer, jwks_uri, audience (a client id, or a list of them), roles_claim?, admin_role?, require_nonce? }`',
    ),
  OIDC_ID_TOKEN_MAX_AGE_SECONDS: z.coerce
    .number()
    .int()
    .min(10)
    .max(3_600)
    .default(300)
    .describe('an ID token issued longer ago than this opens no session (each opens at most one)'),
});

export type IdentityEnv = Omit<
  z.output<typeof identityEnv>,
  'USERS_FILE_RELOAD_SECONDS' | 'OIDC_ID_TOKEN_MAX_AGE_SECONDS'
> & {
  NODE_ENV: 'development' | 'production' | 'test';
};

/** The identity settings out of the app's validated configuration. */
export function readIdentityEnv(config: ConfigService<IdentityEnv, true>): IdentityEnv {
  return {
    NODE_ENV: config.get('NODE_ENV', { infer: true }),
    USERS: config.get('USERS', { infer: true }),
    USERS_FILE: config.get('USERS_FILE', { infer: true }),
    SEED_DEMO_USERS: config.get('SEED_DEMO_USERS', { infer: true }),
    OIDC_ISSUERS: config.get('OIDC_ISSUERS', { infer: true }),
  };
}

/** The message that refuses demo users in production; `loadUserRecords` repeats the check. */
export const DEMO_USERS_IN_PRODUCTION = 'demo users are never loaded when NODE_ENV is production';

/**
 * Rules across variables, for the merged schema's `superRefine` (NODE_ENV comes from
 * `httpEnv`). Apply it last: zod refuses to `.extend` a refined object.
 */
export function identityEnvRules(
  env: {
    NODE_ENV: string;
    SEED_DEMO_USERS: boolean;
    USERS?: string | undefined;
    USERS_FILE?: string | undefined;
    OIDC_ISSUERS?: OidcIssuerConfig[] | undefined;
    ALLOW_INSECURE_HTTP?: boolean | undefined;
  },
  ctx: z.RefinementCtx,
): void {
  // An issuer's keys vouch for users: over plain http anyone on the path could hand us keys.
  if (env.ALLOW_INSECURE_HTTP !== true)
    for (const [i, issuer] of (env.OIDC_ISSUERS ?? []).entries())
      for (const field of ['issuer', 'jwks_uri'] as const)
        if (isInsecureRemoteUrl(issuer[field]))
          ctx.addIssue({
            code: 'custom',
            path: ['OIDC_ISSUERS', i, field],
            message:
              'must be https (plain http only on loopback, or with ALLOW_INSECURE_HTTP=true)',
          });
  if (env.SEED_DEMO_USERS && env.NODE_ENV === 'production') {
    ctx.addIssue({ code: 'custom', path: ['SEED_DEMO_USERS'], message: DEMO_USERS_IN_PRODUCTION });
  }
  if (env.USERS !== undefined && env.USERS_FILE !== undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['USERS_FILE'],
      message: 'set USERS or USERS_FILE, not both',
    });
  }
}
