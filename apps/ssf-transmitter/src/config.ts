import {
  flag,
  httpEnv,
  instanceId,
  jsonEnv,
  kafkaEnv,
  kafkaEnvRules,
  positiveInt,
  redisEnv,
  secret,
} from '@app/config';
import { REVOCATION_TOPIC } from '@app/contracts';
import { z } from 'zod';

/** A management client: its bearer token, and the audience its streams' SETs are addressed to. */
const client = z.strictObject({
  client_id: z.string().min(1).max(128),
  token: z.string().min(16, 'a token of at least 16 characters'),
  audience: z.string().min(1).max(512).optional(),
});
export type SsfClient = z.infer<typeof client>;

const clients = z
  .array(client)
  .refine((list) => new Set(list.map((c) => c.client_id)).size === list.length, {
    error: 'client_id values must be unique',
  })
  .refine((list) => new Set(list.map((c) => c.token)).size === list.length, {
    error: 'each client needs its own token',
  });

/** The signing key: a private JWK, P-256 (ES256) or Ed25519 (EdDSA). */
const privateJwk = z.looseObject({
  kty: z.enum(['EC', 'OKP']),
  crv: z.enum(['P-256', 'Ed25519']),
  d: z.string().min(1, 'a private key (`d`)'),
  x: z.string().min(1),
  y: z.string().optional(),
  kid: z.string().min(1).max(128).optional(),
});

/** Environment of the SSF transmitter; see README.md for every variable. */
export const ssfEnv = httpEnv(3500)
  .extend(redisEnv.shape)
  .extend(kafkaEnv.shape)
  .extend({
    INSTANCE_ID: instanceId('names this transmitter in its logs and Kafka client id'),
    REVOCATION_TOPIC: z
      .string()
      .min(1)
      .default(REVOCATION_TOPIC)
      .describe('the revocation topic the transmitter turns into SETs'),
    SSF_ISSUER: z
      .url({ protocol: /^https?$/ })
      .default('http://127.0.0.1:3500')
      .transform((url) => url.replace(/\/+$/, ''))
      .describe(
        "the transmitter's public URL: `iss` of every SET and the base of the discovery document's endpoints (https in production)",
      ),
    SSF_CLIENTS: secret(
      jsonEnv(clients)
        .default([])
        .describe(
          'JSON `[{"client_id":"…","token":"…","audience":"…"}]`: who may manage streams (`Authorization: Bearer <token>`, 16 characters or more); `audience` (default the client_id) is `aud` of its SETs. None: every management call is 401 (refused with NODE_ENV=production)',
        ),
    ),
    SSF_SIGNING_KEY: secret(
      jsonEnv(privateJwk)
        .optional()
        .describe(
          'private JWK (EC P-256 → ES256, or OKP Ed25519 → EdDSA) signing the SETs; required in production, otherwise one is generated once and kept in Redis',
        ),
    ),
    SSF_KEY_PREFIX: z
      .string()
      .min(1)
      .default('ssf:')
      .describe("prefix of the transmitter's Redis keys (streams, subjects, delivery queues)"),
    SSF_CONSUMER_GROUP: z
      .string()
      .min(1)
      .default('ssf-transmitter')
      .describe(
        'Kafka consumer group reading the revocation topic (offsets committed after queuing)',
      ),
    SSF_DEFAULT_SUBJECTS: z
      .enum(['ALL', 'NONE'])
      .default('ALL')
      .describe(
        '`ALL`: a stream gets events about every subject except those removed; `NONE`: only about subjects added',
      ),
    SSF_PUSH_TIMEOUT_MS: positiveInt
      .max(120_000)
      .default(5_000)
      .describe(
        'longest wait for a receiver to answer one pushed SET; past it the push is retried',
      ),
    SSF_PUSH_BACKOFF_INITIAL_MS: positiveInt
      .max(60_000)
      .default(250)
      .describe('first wait before pushing again to a receiver that failed; doubles per failure'),
    SSF_PUSH_MAX_BACKOFF_MS: positiveInt
      .max(3_600_000)
      .default(60_000)
      .describe('longest wait between pushes to a receiver that keeps failing'),
    SSF_PUSH_CONCURRENCY: positiveInt
      .max(256)
      .default(16)
      .describe(
        'SETs pushed to one receiver at once, each about a different user (one user’s SETs go one after the other)',
      ),
    SSF_POLL_MAX_WAIT_MS: positiveInt
      .max(60_000)
      .default(15_000)
      .describe('a poll request with `returnImmediately: false` waits this long for a SET at most'),
    SSF_ALLOW_HTTP_RECEIVERS: flag
      .default(false)
      .describe(
        'allow push `endpoint_url`s over plain http to other hosts (a private network only; loopback is always allowed)',
      ),
  })
  .superRefine(kafkaEnvRules)
  .superRefine((env, ctx) => {
    if (env.NODE_ENV !== 'production') return;
    if (env.SSF_CLIENTS.length === 0)
      ctx.addIssue({
        code: 'custom',
        path: ['SSF_CLIENTS'],
        message: 'needs at least one client with NODE_ENV=production',
      });
    if (env.SSF_SIGNING_KEY === undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['SSF_SIGNING_KEY'],
        message: 'required with NODE_ENV=production (a generated key is for development only)',
      });
    if (!env.SSF_ISSUER.startsWith('https://'))
      ctx.addIssue({
        code: 'custom',
        path: ['SSF_ISSUER'],
        message: 'must be https with NODE_ENV=production',
      });
  });

export type SsfEnv = z.output<typeof ssfEnv>;
export type SigningJwk = z.output<typeof privateJwk>;
