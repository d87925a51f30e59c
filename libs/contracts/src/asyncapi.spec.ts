import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';
import { decodeMessage } from './codec';
import { heartbeat } from './heartbeat';
import { revocationEvent } from './session-revoked.event';
import { deadLetterTopic, REVOCATION_TOPIC } from './topic';

interface Example {
  name: string;
  headers: Record<string, string>;
  payload: unknown;
}
interface AsyncApi {
  asyncapi: string;
  channels: Record<string, { address: string }>;
  components: {
    schemas: Record<string, unknown>;
    messages: Record<string, { examples: Example[]; payload: { $ref: string } }>;
  };
}

const doc = parse(readFileSync(join(__dirname, '..', 'asyncapi.yaml'), 'utf8')) as AsyncApi;

/** The schema as zod renders it, without the dialect marker the document does not repeat. */
function jsonSchema(schema: z.ZodType): unknown {
  const rendered: Record<string, unknown> = { ...z.toJSONSchema(schema) };
  delete rendered.$schema;
  return rendered;
}

/** Prose the document may add to a schema without changing what it accepts. */
function withoutProse(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutProse);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([key]) => key !== 'description' && key !== 'title')
      .map(([key, inner]) => [key, withoutProse(inner)]),
  );
}

describe('asyncapi.yaml agrees with the contract library', () => {
  it('is an AsyncAPI 3 document for the default topic and its dead-letter topic', () => {
    expect(doc.asyncapi).toMatch(/^3\./);
    const addresses = Object.values(doc.channels).map((channel) => channel.address);
    expect(addresses).toEqual([REVOCATION_TOPIC, deadLetterTopic(REVOCATION_TOPIC)]);
  });

  it.each([
    ['RevocationEvent', revocationEvent],
    ['Heartbeat', heartbeat],
  ] as const)('describes %s exactly as the zod schema does', (name, schema) => {
    expect(withoutProse(doc.components.schemas[name])).toEqual(jsonSchema(schema));
  });

  it('has examples that the consumer decoder accepts', () => {
    const examples = Object.values(doc.components.messages).flatMap((message) => message.examples);
    expect(examples.length).toBeGreaterThanOrEqual(3);
    for (const example of examples) {
      const payload = example.payload as {
        events?: Record<string, { subject: { user: { id: string } } }>;
      };
      const key = payload.events ? Object.values(payload.events)[0]?.subject.user.id : null;
      const decoded = decodeMessage({
        key,
        value: JSON.stringify(example.payload),
        headers: example.headers,
      });
      expect(decoded.kind).toBe(example.headers.kind);
    }
  });
});
