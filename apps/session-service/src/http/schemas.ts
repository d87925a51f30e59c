import { z } from 'zod';
import { userId } from '../identity/user-records';
import { TOKEN_FORMATS } from '../tokens/opaque-token';

/** Request bodies, validated by NestJS's Standard Schema pipe; a 400 names each bad field. */
export const device = z.strictObject({
  name: z.string().trim().min(1).max(100),
  platform: z.string().trim().min(1).max(50).optional(),
});

/**
 * `opaque`: the reply's `access_token` is an opaque `at_` token standing for the access JWT
 * (phantom token; a gateway exchanges it at `POST /oauth/introspect`), for this sign-in and
 * every refresh of the session.
 */
export const tokenFormat = z
  .enum(TOKEN_FORMATS)
  .optional()
  .default('jwt')
  .describe(
    'access_token format: "jwt" (default) or "opaque" (an at_ token standing for the JWT, ' +
      'exchanged at POST /oauth/introspect with Accept: application/jwt), also for its refreshes',
  );

/** The session a sign-in ends first: what a client offers after a 409 device_limit_reached. */
const replaceSessionId = z
  .string()
  .regex(/^s\d{1,5}_[A-Za-z0-9_-]{16,64}$/, 'is not a session id')
  .optional()
  .describe(
    'a session of this user to end first (reason replaced_at_sign_in): after a 409 ' +
      'device_limit_reached, the device the user chose to sign out; ignored if it is not one',
  );

export const loginBody = z.strictObject({
  username: z.string().min(1).max(200),
  password: z.string().min(1).max(1_000),
  device,
  remember: z.boolean().optional().default(false),
  token_format: tokenFormat,
  end_session_id: replaceSessionId,
});
export type LoginBody = z.output<typeof loginBody>;

export const oidcBody = z.strictObject({
  id_token: z.string().min(1).max(16_384),
  nonce: z.string().min(1).max(500).optional(),
  device,
  remember: z.boolean().optional().default(false),
  token_format: tokenFormat,
  end_session_id: replaceSessionId,
});
export type OidcBody = z.output<typeof oidcBody>;

export const refreshBody = z.strictObject({ refresh_token: z.string().min(1).max(200) });
export type RefreshBody = z.output<typeof refreshBody>;

export const planBody = z.strictObject({
  max_devices: z.int().min(1).max(1_000),
  policy: z.enum(['evict_oldest', 'reject']),
});
export type PlanBody = z.output<typeof planBody>;

/** `:userId` in a path. */
export const userIdParam = userId;

/** `?reason=`: why an admin ends sessions, as the revocation event's `reason_admin` says it. */
export const adminReason = z
  .string()
  .trim()
  .min(1)
  .max(200)
  .regex(/^[^\p{Cc}]*$/u, 'has control characters')
  .optional()
  .describe("why, in words: the revocation event's reason_admin (default: admin)");

/** A session id as the service issues them: `s<shard>_<random>`. */
export const sessionIdParam = z
  .string()
  .regex(/^s\d{1,5}_[A-Za-z0-9_-]{16,64}$/, 'is not a session id');

/**
 * RFC 7009 / RFC 7662 bodies (form-encoded, or JSON). `client_id` and `client_secret` are the
 * `client_secret_post` authentication; other parameters are ignored, as the RFCs allow.
 */
export const tokenBody = z.object({
  token: z.string().min(1).max(16_384),
  token_type_hint: z.enum(['access_token', 'refresh_token']).optional(),
  client_id: z.string().min(1).max(200).optional(),
  client_secret: z.string().min(1).max(1_000).optional(),
});
export type TokenBody = z.output<typeof tokenBody>;
