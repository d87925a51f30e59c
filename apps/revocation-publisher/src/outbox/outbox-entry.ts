/** One entry read from an outbox shard stream. `fields` is empty for an entry deleted meanwhile. */
export interface OutboxEntry {
  shard: number;
  stream: string;
  id: string;
  fields: Record<string, string>;
}

/** Milliseconds since the epoch at which Redis appended the entry (the first part of its id). */
export function entryTime(id: string): number {
  return Number(id.slice(0, id.indexOf('-')));
}

export function toFields(flat: string[] | null | undefined): Record<string, string> {
  const fields: Record<string, string> = {};
  if (!flat) return fields;
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const [name, value] = [flat[i], flat[i + 1]];
    if (name !== undefined && value !== undefined) fields[name] = value;
  }
  return fields;
}
