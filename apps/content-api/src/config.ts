import { httpEnv, kafkaEnvRules } from '@app/config';
import { revocationGuardEnv } from '@app/revocation-guard';
import type { z } from 'zod';

/** Environment of the content-api; see README.md for every variable. */
export const contentApiEnv = httpEnv(3100)
  .extend(revocationGuardEnv.shape)
  .superRefine(kafkaEnvRules);

export type ContentApiEnv = z.output<typeof contentApiEnv>;
