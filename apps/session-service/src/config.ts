import { httpEnv, redisEnv } from '@app/config';
import type { z } from 'zod';

/** Environment of the session-service; see README.md for every variable. */
export const sessionServiceEnv = httpEnv(3000).extend(redisEnv.shape);

export type SessionServiceEnv = z.output<typeof sessionServiceEnv>;
