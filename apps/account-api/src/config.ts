import { httpEnv, kafkaEnv } from '@app/config';
import type { z } from 'zod';

/** Environment of the account-api; see README.md for every variable. */
export const accountApiEnv = httpEnv(3200).extend(kafkaEnv.shape);

export type AccountApiEnv = z.output<typeof accountApiEnv>;
