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
    REDIS_KEY_PREFIX: z
      .string()
      .default('sr:')
      .describe('prefix of every Redis key (both apps must agree)'),
    REDIS_DURABILITY: z
      .enum(['local', 'replicas'])
      .default('local')
      .describe(
        "a session end is answered once on the primary's disk (`local`), or also on replicas (`replicas`); see ARCHITECTURE.md",
      ),
    REDIS_DURABILITY_REPLICAS: positiveInt
      .max(16)
      .default(1)
      .describe('with `replicas`: how many replicas must have each session end'),
    REDIS_DURABILITY_TIMEOUT_MS: positiveInt
      .max(60_000)
      .default(1_000)
      .describe('how long a session end waits for that before answering 503'),
    OUTBOX_SHARDS: positiveInt
      .max(16_384)
      .default(DEFAULT_OUTBOX_SHARDS)
      .describe('outbox streams (Redis Cluster slots they spread over); both apps must agree'),
    SESSION_IDLE_TIMEOUT_SECONDS: positiveInt
      .default(30 * 60)
      .describe('a session unused this long ends'),
    SESSION_ABSOLUTE_TIMEOUT_SECONDS: positiveInt
      .default(12 * 3600)
      .describe('a session ends this long after sign-in, however active'),
    SESSION_REMEMBER_ME_SECONDS: positiveInt
      .default(30 * 24 * 3600)
      .describe('idle and absolute lifetime of a `remember` sign-in'),
    DEFAULT_MAX_DEVICES: positiveInt
      .max(1_000)
      .default(5)
      .describe("live sessions a user may have, unless an admin set the user's plan"),
    DEFAULT_DEVICE_POLICY: z
      .enum(['evict_oldest', 'reject'])
      .default('evict_oldest')
      .describe('at the limit: end the least recently active session, or refuse the sign-in (409)'),
    REFRESH_REUSE_GRACE_SECONDS: z.coerce
      .number()
      .int()
      .min(0)
      .max(10)
      .default(5)
      .describe(
        'a rotated refresh token presented again this soon is a client racing itself, not theft',
      ),
    SESSION_SWEEP_INTERVAL_SECONDS: positiveInt
      .default(30)
      .describe('how often sessions past their deadline are ended (with their events)'),
    RATE_LIMIT_WINDOW_SECONDS: positiveInt.default(60).describe('window of RATE_LIMIT_PER_IP'),
    RATE_LIMIT_PER_IP: positiveInt
      .default(30)
      .describe(
        'sign-in, OIDC sign-in and refresh requests per client address and route, per window; also refused back-channel logout tokens per address',
      ),
    RATE_LIMIT_CONSECUTIVE_FAILS: positiveInt
      .default(5)
      .describe('failed passwords for one username from one address before that pair is blocked'),
    RATE_LIMIT_BLOCK_SECONDS: positiveInt
      .default(15 * 60)
      .describe('how long such a pair is blocked (and its failures remembered)'),
    RATE_LIMIT_FAILS_PER_IP: positiveInt
      .default(100)
      .describe('failed passwords per client address per day, whatever the usernames'),
    RATE_LIMIT_FAILS_PER_USERNAME: positiveInt
      .default(100)
      .describe('failed passwords per username per hour from all addresses together'),
    OAUTH_CLIENTS: secret(
      oauthClients
        .default([])
        .describe(
          'JSON array of `{ client_id, client_secret }` that may call /oauth/revoke and /oauth/introspect',
        ),
    ),
  })
  .superRefine(identityEnvRules)
  .superRefine(secureUrlRules(['ISSUER']));

export type SessionServiceEnv = z.output<typeof sessionServiceEnv>;
