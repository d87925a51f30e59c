import { z } from 'zod';

/** Thrown at start-up when the environment does not match an app's schema. */
export class InvalidEnvironmentError extends Error {
  override readonly name = 'InvalidEnvironmentError';
}

/** Variables whose values are secrets: a validation error names them, never shows them. */
export const secrets = z.registry<{ secret: true }>();

/** Marks a variable's schema as a secret (see {@link secrets}). */
export function secret<T extends z.ZodType>(schema: T): T {
  secrets.add(schema, { secret: true });
  return schema;
}

/** The schema of one variable of an app's (object) schema, if it has that shape. */
function fieldSchema(schema: z.ZodType, name: string): z.ZodType | undefined {
  const shape = (schema as { shape?: Record<string, z.ZodType> }).shape;
  return shape?.[name];
}

/** What a bad value is shown as: not at all for a secret; a URL without its password. */
function shown(schema: z.ZodType, name: string, given: unknown): string {
  if (given === undefined) return 'not set';
  const field = fieldSchema(schema, name);
  if (field && secrets.has(field)) return 'value not shown: a secret';
  if (typeof given === 'string' && /^[a-z][a-z0-9+.-]*:\/\/[^/]*@/i.test(given)) {
    return `got ${JSON.stringify(given.replace(/\/\/[^/@]*@/, '//***@'))}`;
  }
  return `got ${JSON.stringify(given)}`;
}

/**
 * Returns a `validate` function for `ConfigModule.forRoot`: it parses the environment
 * with `schema` and refuses to start with a message naming every bad variable, and what it
 * got unless that is a secret.
 */
export function validateEnv<S extends z.ZodType<Record<string, unknown>>>(schema: S) {
  return (env: Record<string, unknown>): z.output<S> => {
    const result = schema.safeParse(env);
    if (result.success) return result.data;
    const problems = result.error.issues.map((issue) => {
      const variable = issue.path.join('.') || '(environment)';
      const name = String(issue.path[0] ?? '');
      const given = issue.path.length ? env[name] : undefined;
      return `  ${variable}: ${issue.message} (${shown(schema, name, given)})`;
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
