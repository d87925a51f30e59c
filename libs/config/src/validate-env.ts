import type { z } from 'zod';

/** Thrown at start-up when the environment does not match an app's schema. */
export class InvalidEnvironmentError extends Error {
  override readonly name = 'InvalidEnvironmentError';
}

/**
 * Returns a `validate` function for `ConfigModule.forRoot`: it parses the environment
 * with `schema` and refuses to start with a message naming every bad variable.
 */
export function validateEnv<S extends z.ZodType<Record<string, unknown>>>(schema: S) {
  return (env: Record<string, unknown>): z.output<S> => {
    const result = schema.safeParse(env);
    if (result.success) return result.data;
    const problems = result.error.issues.map((issue) => {
      const variable = issue.path.join('.') || '(environment)';
      const given = issue.path.length ? env[String(issue.path[0])] : undefined;
      const shown = given === undefined ? 'not set' : `got ${JSON.stringify(given)}`;
      return `  ${variable}: ${issue.message} (${shown})`;
    });
    throw new InvalidEnvironmentError(`Invalid environment:\n${problems.join('\n')}`);
  };
}

/**
 * `ConfigService.get` types a validated optional variable as always present; it is not.
 * Wrap such reads so the compiler (and the `??` after them) see the truth.
 */
export function optional<T>(value: T): T | undefined {
  return value;
}
