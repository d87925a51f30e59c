import { z } from 'zod';
import { secrets } from './validate-env';

/** One variable as the README's configuration tables show it. */
export interface VariableDoc {
  name: string;
  /** As one would write it in the environment; empty when unset by default. */
  defaultValue: string;
  description: string | undefined;
  secret: boolean;
}

type ObjectSchema = z.ZodType & { shape: Record<string, z.ZodType> };

function defaultOf(field: z.ZodType): unknown {
  if (field instanceof z.ZodDefault) return field.def.defaultValue;
  if (field instanceof z.ZodOptional) return defaultOf(field.def.innerType as z.ZodType);
  if (field instanceof z.ZodPipe) return defaultOf(field.def.in as z.ZodType);
  return undefined;
}

function asEnvValue(value: unknown): string {
  if (value === undefined) return '';
  if (Array.isArray(value))
    return value.every((item) => typeof item === 'string')
      ? value.join(',')
      : JSON.stringify(value);
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

/**
 * The variables of an app's environment schema, from the schema itself: name, default and
 * the `.describe()` text. `omit` leaves out variables documented in another table.
 */
export function envDocs(schema: z.ZodType, omit: Iterable<string> = []): VariableDoc[] {
  const skip = new Set(omit);
  return Object.entries((schema as ObjectSchema).shape)
    .filter(([name]) => !skip.has(name))
    .map(([name, field]) => ({
      name,
      defaultValue: asEnvValue(defaultOf(field)),
      description: field.description,
      secret: secrets.has(field),
    }));
}

/** A Markdown table of `variables` (run it through Prettier as the README is). */
export function envTable(variables: VariableDoc[], defaults: Record<string, string> = {}): string {
  const cell = (text: string) => text.replaceAll('|', '\\|');
  const rows = variables.map(({ name, defaultValue, description, secret }) => {
    const shown = defaults[name] ?? (defaultValue === '' ? 'unset' : `\`${defaultValue}\``);
    const meaning = `${description ?? ''}${secret ? ' (secret: never logged or echoed)' : ''}`;
    return `| \`${name}\` | ${cell(shown)} | ${cell(meaning)} |`;
  });
  return ['| variable | default | meaning |', '| --- | --- | --- |', ...rows].join('\n');
}
