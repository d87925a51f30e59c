import {
  allowInsecureHttpEnv,
  httpEnv,
  jsonEnv,
  positiveInt,
  redisEnv,
  secret,
  secureUrlRules,
} from '@app/config';
import { DEFAULT_OUTBOX_SHARDS } from '@app/contracts';
import { z } from 'zod';
import { identityEnv, identityEnvRules } from './identity/identity.env';
import { tokensEnv } from './tokens/tokens.env';

const oauthClients = jsonEnv(
  z.array(z.strictObject({ client_id: z.string().min(1), client_secret: z.string().min(16) })),
);

/** Environment of the session-service; see README.md for every variable. */
export const sessionServiceEnv = httpEnv(3000)
  .extend(redisEnv.shape)
  .extend(tokensEnv.shape)
  .extend(identityEnv.shape)
  .extend(allowInsecureHttpEnv.shape)
  .extend({
    REDIS_KEY_PREFIX: z.string().default('sr:'),
    /** How durable a session end is before the answer: `local` (primary) or `replicas`. */
    REDIS_DURABILITY: z.enum(['local', 'replicas']).default('local'),
    /** With `replicas`: how many replicas must have each session end. */
    REDIS_DURABILITY_REPLICAS: positiveInt.max(16).default(1),
    /** How long a session end waits for that before it answers 503 (ms). */
    REDIS_DURABILITY_TIMEOUT_MS: positiveInt.max(60_000).default(1_000),
    OUTBOX_SHARDS: positiveInt.max(16_384).default(DEFAULT_OUTBOX_SHARDS),
    SESSION_IDLE_TIMEOUT_SECONDS: positiveInt.default(30 * 60),
    SESSION_ABSOLUTE_TIMEOUT_SECONDS: positiveInt.default(12 * 3600),
    SESSION_REMEMBER_ME_SECONDS: positiveInt.default(30 * 24 * 3600),
    DEFAULT_MAX_DEVICES: positiveInt.max(1_000).default(5),
    DEFAULT_DEVICE_POLICY: z.enum(['evict_oldest', 'reject']).default('evict_oldest'),
    /** A rotated refresh token presented again this soon is a client's own race, not theft (≤ 10 s). */
    REFRESH_REUSE_GRACE_SECONDS: z.coerce.number().int().min(0).max(10).default(5),
    SESSION_SWEEP_INTERVAL_SECONDS: positiveInt.default(30),
    /** Sign-in, OIDC sign-in and refresh requests per client address and route, per window. */
    RATE_LIMIT_WINDOW_SECONDS: positiveInt.default(60),
    RATE_LIMIT_PER_IP: positiveInt.default(30),
    /** Failed passwords for one username from one address before that pair is blocked. */
    RATE_LIMIT_CONSECUTIVE_FAILS: positiveInt.default(5),
    /** How long such a pair is blocked (and how long its failures are remembered). */
    RATE_LIMIT_BLOCK_SECONDS: positiveInt.default(15 * 60),
    /** Failed passwords per client address per day, whatever the usernames. */
    RATE_LIMIT_FAILS_PER_IP: positiveInt.default(100),
    /** Failed passwords per username per hour from all addresses (spread-out guessing). */
    RATE_LIMIT_FAILS_PER_USERNAME: positiveInt.default(100),
    /** JSON array of `{ client_id, client_secret }` allowed to call /oauth/revoke and /oauth/introspect. */
    OAUTH_CLIENTS: secret(oauthClients.default([])),
  })
  .superRefine(identityEnvRules)
  .superRefine(secureUrlRules(['ISSUER']));

export type SessionServiceEnv = z.output<typeof sessionServiceEnv>;
