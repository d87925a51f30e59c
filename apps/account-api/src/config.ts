import { httpEnv } from '@app/config';
import { revocationGuardEnv, revocationGuardEnvRules } from '@app/revocation-guard';
import type { z } from 'zod';

/** Environment of the account-api; see README.md for every variable. */
export const accountApiEnv = httpEnv(3200)
  .extend(revocationGuardEnv.shape)
  .superRefine(revocationGuardEnvRules);

export type AccountApiEnv = z.output<typeof accountApiEnv>;
