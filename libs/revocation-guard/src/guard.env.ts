import {
  allowInsecureHttpEnv,
  csv,
  flag,
  instanceId,
  kafkaEnv,
  kafkaEnvRules,
  positiveInt,
  secureUrlRules,
} from '@app/config';
import { REVOCATION_TOPIC } from '@app/contracts';
import { z } from 'zod';
import { CLOCK_TOLERANCE_SECONDS } from '@app/contracts';

/**
 * Environment of every app that uses the guard, to be merged into its schema
 * (`.extend(revocationGuardEnv.shape)`); see README.md for each variable.
 */
export const revocationGuardEnv = kafkaEnv.extend(allowInsecureHttpEnv.shape).extend({
  INSTANCE_ID: instanceId(
    'names this instance in logs, its consumer group and dead letters; default: host-pid',
  ),
  REVOCATION_TOPIC: z
    .string()
    .min(1)
    .default(REVOCATION_TOPIC)
    .describe('the topic to consume (its `.dlq` receives what fails the contract)'),
  JWKS_URL: z
    .url({ protocol: /^https?$/ })
    .default('http://127.0.0.1:3000/.well-known/jwks.json')
    .describe("the issuer's public keys (fetched before ready, refreshed every 5 min); https"),
  TOKEN_ISSUER: z
    .string()
    .min(1)
    .default('http://127.0.0.1:3000')
    .describe("`iss` every access token must carry (the session service's ISSUER)"),
  TOKEN_AUDIENCE: csv
    .default(['session-revocation-apis'])
    .describe('audiences this service answers to (comma-separated): a token must be for one'),
  ACCESS_TOKEN_MAX_TTL_SECONDS: positiveInt
    .default(300)
    .describe("the issuer's longest token lifetime: revocations are kept and replayed this long"),
  CLOCK_TOLERANCE_SECONDS: z.coerce
    .number()
    .int()
    .min(0)
    .max(60)
    .default(CLOCK_TOLERANCE_SECONDS)
    .describe('allowed clock skew for `exp`, `nbf`, `iat`'),
  FRESHNESS_BOUND_MS: positiveInt
    .default(10_000)
    .describe('a partition without a heartbeat for this long makes guarded routes answer 503'),
  REVOCATION_FAIL_OPEN: flag
    .default(false)
    .describe('serve on a stale view instead (marked `revocation-view-stale: true`, counted)'),
  VERIFIED_TOKEN_CACHE_SIZE: z.coerce
    .number()
    .int()
    .min(0)
    .max(10_000_000)
    .default(10_000)
    .describe('verified tokens remembered (LRU, dropped at `exp`); `0` verifies every time'),
  KAFKA_FETCH_MAX_WAIT_MS: positiveInt
    .max(5_000)
    .default(100)
    .describe("longest a fetch waits on an idle broker (KafkaJS's default is 5000)"),
});

export type RevocationGuardEnv = z.output<typeof revocationGuardEnv>;

const keysOverHttps = secureUrlRules(['JWKS_URL']);

/** Rules across the guard's variables, for the app schema's `superRefine` (applied last). */
export function revocationGuardEnvRules(env: Record<string, unknown>, ctx: z.RefinementCtx): void {
  kafkaEnvRules(env, ctx);
  keysOverHttps(env, ctx);
}
