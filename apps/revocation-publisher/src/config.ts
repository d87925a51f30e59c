import { httpEnv, kafkaEnv, redisEnv } from '@app/config';
import type { z } from 'zod';

/** Environment of the revocation-publisher; see README.md for every variable. */
export const revocationPublisherEnv = httpEnv(3001).extend(redisEnv.shape).extend(kafkaEnv.shape);

export type RevocationPublisherEnv = z.output<typeof revocationPublisherEnv>;
