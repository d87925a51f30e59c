import { httpEnv, jsonEnv, secret } from '@app/config';
import { z } from 'zod';

const clientUrl = z.url({ protocol: /^https?$/ });

/** One client of the dev provider: a confidential web client using the code flow with PKCE. */
export const devIdpClient = z.strictObject({
  client_id: z.string().min(1).max(200),
  client_secret: z.string().min(16, 'at least 16 characters'),
  redirect_uris: z.array(clientUrl).min(1),
  post_logout_redirect_uris: z.array(clientUrl).default([]),
  /** Where the provider POSTs logout tokens (OpenID Connect Back-Channel Logout 1.0). */
  backchannel_logout_uri: clientUrl.optional(),
  /** A client of this project (the gateway): its users are not asked to consent. */
  first_party: z.boolean().default(true),
  client_name: z.string().min(1).max(200).optional(),
});
export type DevIdpClient = z.output<typeof devIdpClient>;

/** Environment of the dev OpenID provider (local stack and tests only; refused in production). */
export const devIdpEnv = httpEnv(4000).extend({
  DEV_IDP_ISSUER: z
    .url({ protocol: /^https?$/ })
    .default('http://127.0.0.1:4000')
    .describe(
      'the issuer (`iss`) the dev provider names itself: the URL browsers and clients reach it at (plain http is fine: it never runs in production)',
    ),
  DEV_IDP_CLIENTS: secret(
    jsonEnv(
      z
        .array(devIdpClient)
        .refine(
          (list) => new Set(list.map((c) => c.client_id)).size === list.length,
          'lists a client_id twice',
        ),
    )
      .default([])
      .describe(
        'JSON array of `{ client_id, client_secret, redirect_uris, post_logout_redirect_uris?, backchannel_logout_uri?, first_party? (default true: no consent page), client_name? }`: code flow, PKCE required, `sid` in ID and logout tokens',
      ),
  ),
  DEV_IDP_SESSION_TTL_SECONDS: z.coerce
    .number()
    .int()
    .min(60)
    .max(30 * 24 * 3600)
    .default(8 * 3600)
    .describe('how long the provider’s single sign-on session (its cookie) lasts'),
});
export type DevIdpEnv = z.output<typeof devIdpEnv>;

/** The message the dev provider stops with when NODE_ENV is production. */
export const REFUSED_IN_PRODUCTION =
  'the dev OpenID provider never runs with NODE_ENV=production: it has demo users with well-known passwords and keys made at start; point the gateway and the session service at a real provider (Keycloak, Entra ID, …)';
