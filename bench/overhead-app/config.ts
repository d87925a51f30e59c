import { httpEnv, redisEnv } from '@app/config';
import { z } from 'zod';

/** What stands in front of GET /me: nothing, our guard, or the tutorial design. */
export const MODES = ['noauth', 'guard', 'naive'] as const;
export type Mode = (typeof MODES)[number];

/** Read before the Nest app exists: it decides which module the app is made of. */
export function modeFromEnv(env: NodeJS.ProcessEnv): Mode {
  const mode = MODES.find((m) => m === env.BENCH_MODE);
  if (!mode)
    throw new Error(
      `BENCH_MODE must be one of ${MODES.join(', ')} (got ${env.BENCH_MODE ?? 'nothing'})`,
    );
  return mode;
}

export const commonEnv = httpEnv(3300).extend({ BENCH_MODE: z.enum(MODES) });

export const naiveEnv = commonEnv.extend(redisEnv.shape).extend({
  /** The session service's JWKS; its first key verifies (tutorials configure one PEM key). */
  JWKS_URL: z.url(),
  TOKEN_ISSUER: z.string().min(1),
  TOKEN_AUDIENCE: z.string().min(1).default('session-revocation-apis'),
  DENYLIST_PREFIX: z.string().default('denylist:'),
});
export type NaiveEnv = z.output<typeof naiveEnv>;

/** The fixed answer of the unauthenticated variant: the shape every variant answers with. */
export const FIXED_IDENTITY = { sub: 'bench-user', session_id: 's0_AAAAAAAAAAAAAAAAAAAAAA' };
