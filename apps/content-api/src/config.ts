import { httpEnv, kafkaEnv } from '@app/config';
import type { z } from 'zod';

/** Environment of the content-api; see README.md for every variable. */
export const contentApiEnv = httpEnv(3100).extend(kafkaEnv.shape);

export type ContentApiEnv = z.output<typeof contentApiEnv>;
