import { httpEnv, jsonEnv, positiveInt, redisEnv, secret, secureUrlRules } from '@app/config';
import { revocationGuardEnv, revocationGuardEnvRules } from '@app/revocation-guard';
import { z } from 'zod';

const upstreams = z.record(
  z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'a service name: lowercase letters, digits, -'),
  z.array(z.url({ protocol: /^https?$/ })).min(1, 'needs at least one instance URL'),
);

const origins = z
  .string()
  .transform((value) =>
    value
      .split(',')
      .map((item) => item.trim())
      .filter(Boolean),
  )
  .pipe(z.array(z.url({ protocol: /^https?$/ })));

/** Environment of the gateway; see README.md for every variable. */
export const gatewayEnv = httpEnv(8080)
  .extend(redisEnv.shape)
  .extend(revocationGuardEnv.shape)
  .extend({
    GATEWAY_SESSION_SERVICE_URL: z
      .url({ protocol: /^https?$/ })
      .default('http://127.0.0.1:3000')
      .describe('the session service the token handler signs in, refreshes and logs out at'),
    GATEWAY_SESSION_SERVICE_TIMEOUT_MS: positiveInt
      .max(120_000)
      .default(15_000)
      .describe(
        'longest wait for the session service (a sign-in hashes a password: seconds on a busy machine); past it 503 and Retry-After',
      ),
    GATEWAY_UPSTREAMS: jsonEnv(upstreams)
      .default({ content: ['http://127.0.0.1:3100'], account: ['http://127.0.0.1:3200'] })
      .describe(
        'JSON `{"<service>": ["<instance URL>", …]}`: `/api/<service>/…` goes to one of them (round-robin); nothing else is reachable',
      ),
    GATEWAY_UPSTREAM_COOLOFF_MS: positiveInt
      .max(300_000)
      .default(5_000)
      .describe(
        'an upstream instance that could not be reached is skipped this long (passive health); when all are, they are tried anyway',
      ),
    GATEWAY_UPSTREAM_TIMEOUT_MS: positiveInt
      .max(600_000)
      .default(30_000)
      .describe(
        'an upstream instance that sends no answer (or no more of its body) for this long: 504, and it is skipped like one that could not be reached',
      ),
    GATEWAY_ALLOWED_ORIGINS: origins
      .default(['http://localhost:8080', 'http://127.0.0.1:8080'])
      .describe(
        'origins (comma-separated) allowed on state-changing and `/api/*` requests that carry `Origin`; others get 403',
      ),
    GATEWAY_KEY_PREFIX: z
      .string()
      .min(1)
      .default('gateway:')
      .describe("prefix of the gateway's own Redis keys (cookie sessions: `<prefix>bff:<sha256>`)"),
    GATEWAY_SESSION_TTL_SECONDS: positiveInt
      .default(12 * 3600)
      .describe(
        "how long a cookie session's tokens are kept: the session service's SESSION_ABSOLUTE_TIMEOUT_SECONDS",
      ),
    GATEWAY_REMEMBER_TTL_SECONDS: positiveInt
      .default(30 * 24 * 3600)
      .describe(
        'the same with `remember` (also the cookie Max-Age): the session service’s SESSION_REMEMBER_ME_SECONDS',
      ),
    GATEWAY_REFRESH_AHEAD_SECONDS: positiveInt
      .max(60)
      .default(5)
      .describe('the access token is refreshed when it expires within this many seconds'),
    GATEWAY_CLIENT_ID: z
      .string()
      .min(1)
      .default('gateway')
      .describe(
        "the gateway's client id at the session service's `/oauth/introspect` (an `OAUTH_CLIENTS` entry there), for exchanging opaque `at_` tokens",
      ),
    GATEWAY_CLIENT_SECRET: secret(
      z
        .string()
        .min(1)
        .optional()
        .describe(
          "that client's secret; without it an opaque bearer token gets 503 at the gateway (cookie sessions still work)",
        ),
    ),
    GATEWAY_PHANTOM_CACHE_SIZE: positiveInt
      .default(10_000)
      .describe(
        'most opaque tokens whose JWT the gateway keeps (LRU, keyed by the SHA-256 of the token; an entry never outlives its JWT `exp`)',
      ),
    GATEWAY_EVENTS_KEEPALIVE_MS: positiveInt
      .min(100)
      .max(300_000)
      .default(15_000)
      .describe(
        'a comment line goes to every open `GET /bff/events` stream this often, so that proxies keep it open; the admin session behind each stream is checked again then too',
      ),
    GATEWAY_EVENTS_BUFFER: positiveInt
      .max(100_000)
      .default(1_000)
      .describe(
        'most revocation events held for one `GET /bff/events` client that does not read; one more closes its stream (it reconnects and sees the gap in the event ids)',
      ),
    GATEWAY_OIDC_ISSUER: z
      .url({ protocol: /^https?$/ })
      .optional()
      .describe(
        'OpenID provider for "Sign in with …" (`GET /bff/login/oidc`, code flow with PKCE): its issuer URL, discovered at first use; unset: no such sign-in (404)',
      ),
    GATEWAY_OIDC_CLIENT_ID: z
      .string()
      .min(1)
      .optional()
      .describe(
        "the gateway's client id at that provider (its redirect URIs: `<each allowed origin>/bff/callback`, post-logout: `<origin>/`)",
      ),
    GATEWAY_OIDC_CLIENT_SECRET: secret(
      z
        .string()
        .min(1)
        .optional()
        .describe("that client's secret (sent with HTTP Basic to the provider's token endpoint)"),
    ),
    GATEWAY_OIDC_PROVIDER_NAME: z
      .string()
      .min(1)
      .max(100)
      .optional()
      .describe(
        'the provider as the console names it ("Sign in with <name>"); default: the issuer\'s host',
      ),
    GATEWAY_OIDC_SCOPES: z
      .string()
      .regex(/^openid( [\x21\x23-\x5b\x5d-\x7e]+)*$/, 'space-separated scopes, `openid` first')
      .default('openid profile')
      .describe(
        'scopes the gateway asks the provider for (the ID token must carry the roles claim the session service reads)',
      ),
    GATEWAY_TEST_HOLD_INTROSPECTION_MS: positiveInt
      .max(60_000)
      .optional()
      .describe(
        'test only, refused with NODE_ENV=production: holds each introspection answer this long before the gateway re-checks and uses it (to test a revocation landing in flight)',
      ),
  })
  .superRefine(revocationGuardEnvRules)
  // The provider vouches for users: https, or plain http on loopback or with ALLOW_INSECURE_HTTP.
  .superRefine(secureUrlRules(['GATEWAY_OIDC_ISSUER']))
  .superRefine((env, ctx) => {
    if (env.NODE_ENV === 'production' && env.GATEWAY_TEST_HOLD_INTROSPECTION_MS !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['GATEWAY_TEST_HOLD_INTROSPECTION_MS'],
        message: 'a test-only setting, refused with NODE_ENV=production',
      });
    const oidc = [
      'GATEWAY_OIDC_ISSUER',
      'GATEWAY_OIDC_CLIENT_ID',
      'GATEWAY_OIDC_CLIENT_SECRET',
    ] as const;
    const set = oidc.filter((name) => env[name] !== undefined);
    if (set.length > 0 && set.length < oidc.length)
      for (const name of oidc.filter((n) => env[n] === undefined))
        ctx.addIssue({
          code: 'custom',
          path: [name],
          message: `needed with ${set.join(', ')} (OpenID sign-in takes issuer, client id and secret)`,
        });
  });

export type GatewayEnv = z.output<typeof gatewayEnv>;
