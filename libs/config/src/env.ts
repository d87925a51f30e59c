import { z } from 'zod';

/** Reads a comma-separated list, e.g. `KAFKA_BROKERS=127.0.0.1:9092,127.0.0.1:9093`. */
export const csv = z
  .string()
  .transform((value) =>
    value
      .split(',')
      .map((item) => item.trim())
      .filter(Boolean),
  )
  .pipe(z.array(z.string()).min(1, 'needs at least one entry'));

/** A variable holding JSON, parsed and then checked with `schema`. */
export function jsonEnv<S extends z.ZodType>(schema: S) {
  return z
    .string()
    .transform((text, ctx) => {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'is not valid JSON' });
        return z.NEVER;
      }
    })
    .pipe(schema);
}

export const port = z.coerce.number().int().min(1).max(65_535);

/** Positive integer given as text (`"250"`), e.g. milliseconds or counts. */
export const positiveInt = z.coerce.number().int().positive();

/** `true`/`false`/`1`/`0`/`yes`/`no`, case-insensitive. */
export const flag = z
  .enum(['true', 'false', '1', '0', 'yes', 'no', 'TRUE', 'FALSE', 'YES', 'NO'])
  .transform((value) => ['true', '1', 'yes'].includes(value.toLowerCase()));

export const logLevel = z.enum(['fatal', 'error', 'warn', 'log', 'debug', 'verbose']);

/** Every HTTP app: where it listens and how much it logs. */
export const httpEnv = (defaultPort: number) =>
  z.object({
    NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
    HTTP_HOST: z.string().min(1).default('127.0.0.1'),
    HTTP_PORT: port.default(defaultPort),
    LOG_LEVEL: logLevel.default('log'),
  });

export const kafkaEnv = z.object({
  KAFKA_BROKERS: csv.default(['127.0.0.1:9092']),
  KAFKA_CLIENT_ID: z.string().min(1).optional(),
});

export const redisEnv = z.object({
  REDIS_URL: z.url({ protocol: /^rediss?$/ }).default('redis://127.0.0.1:6380'),
});

export type HttpEnv = z.output<ReturnType<typeof httpEnv>>;
export type KafkaEnv = z.output<typeof kafkaEnv>;
export type RedisEnv = z.output<typeof redisEnv>;
