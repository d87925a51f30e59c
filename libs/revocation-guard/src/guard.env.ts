import {
  allowInsecureHttpEnv,
  csv,
  flag,
  kafkaEnv,
  kafkaEnvRules,
  positiveInt,
  secureUrlRules,
} from '@app/config';
import { REVOCATION_TOPIC } from '@app/contracts';
import { z } from 'zod';
import { CLOCK_TOLERANCE_SECONDS } from './access-token';

/**
 * Environment of every app that uses the guard, to be merged into its schema
 * (`.extend(revocationGuardEnv.shape)`); see README.md for each variable.
 */
export const revocationGuardEnv = kafkaEnv.extend(allowInsecureHttpEnv.shape).extend({
  /** Names this instance in logs, its consumer group and dead letters; defaults to host-pid. */
  INSTANCE_ID: z.string().min(1).max(100).optional(),
  REVOCATION_TOPIC: z.string().min(1).default(REVOCATION_TOPIC),
  JWKS_URL: z.url({ protocol: /^https?$/ }).default('http://127.0.0.1:3000/.well-known/jwks.json'),
  TOKEN_ISSUER: z.string().min(1).default('http://127.0.0.1:3000'),
  /** Audiences this service answers to (comma-separated): a token must be for one of them. */
  TOKEN_AUDIENCE: csv.default(['session-revocation-apis']),
  /** The issuer's longest access-token lifetime: revocations are kept and replayed this long. */
  ACCESS_TOKEN_MAX_TTL_SECONDS: positiveInt.default(300),
  CLOCK_TOLERANCE_SECONDS: z.coerce.number().int().min(0).max(60).default(CLOCK_TOLERANCE_SECONDS),
  /** Guarded routes answer 503 once a partition has had no heartbeat for this long. */
  FRESHNESS_BOUND_MS: positiveInt.default(10_000),
  /** Serve on a stale view instead (marked with a header, counted in metrics). */
  REVOCATION_FAIL_OPEN: flag.default(false),
  VERIFIED_TOKEN_CACHE_SIZE: z.coerce.number().int().min(0).max(10_000_000).default(10_000),
  KAFKA_FETCH_MAX_WAIT_MS: positiveInt.max(5_000).default(100),
});

export type RevocationGuardEnv = z.output<typeof revocationGuardEnv>;

const keysOverHttps = secureUrlRules(['JWKS_URL']);

/** Rules across the guard's variables, for the app schema's `superRefine` (applied last). */
export function revocationGuardEnvRules(env: Record<string, unknown>, ctx: z.RefinementCtx): void {
  kafkaEnvRules(env, ctx);
  keysOverHttps(env, ctx);
}
