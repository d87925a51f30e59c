import { ConfigModule } from '@nestjs/config';
import type { z } from 'zod';
import { validateEnv } from '../validate-env';

/**
 * An app's root ConfigModule: global, from the process environment only (no `.env` file),
 * validated by the app's schema before anything starts.
 */
export function configFromEnv(schema: z.ZodType<Record<string, unknown>>) {
  return ConfigModule.forRoot({
    isGlobal: true,
    ignoreEnvFile: true,
    validate: validateEnv(schema),
  });
}
