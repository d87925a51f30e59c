import { httpEnv } from '@app/config';
import { revocationGuardEnv, revocationGuardEnvRules } from '@app/revocation-guard';
import type { z } from 'zod';

/** Environment of the content-api; see README.md for every variable. */
export const contentApiEnv = httpEnv(3100)
  .extend(revocationGuardEnv.shape)
  .superRefine(revocationGuardEnvRules);

export type ContentApiEnv = z.output<typeof contentApiEnv>;
