import { httpEnv, redisEnv } from '@app/config';
import { z } from 'zod';

/** What stands in front of GET /me: nothing, our guard, or the tutorial design. */
export const MODES = ['noauth', 'guard', 'naive'] as const;
export type Mode = (typeof MODES)[number];

export const commonEnv = httpEnv(3300).extend({ BENCH_MODE: z.enum(MODES) });

/** Read before the Nest app exists: it decides which module the app is made of. */
export const modeFromEnv = (env: NodeJS.ProcessEnv): Mode =>
  commonEnv.shape.BENCH_MODE.parse(env.BENCH_MODE);

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
