import { registerAs } from '@nestjs/config';
import type { z } from 'zod';

/**
 * A feature's typed settings (`ConfigModule.forFeature(x)`, injected with `@Inject(x.KEY)`,
 * typed by `ConfigType<typeof x>`): what `select` makes of the environment parsed by `schema`,
 * instead of a `config.get` per value in each constructor. The app's ConfigModule has
 * validated the environment against its full schema before any feature reads it.
 */
export function featureSettings<S extends z.ZodType, T extends Record<string, unknown>>(
  name: string,
  schema: S,
  select: (env: z.output<S>) => T,
) {
  return registerAs(name, (): T => select(schema.parse(process.env)));
}
