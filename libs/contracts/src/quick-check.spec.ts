import { buildRevocationEvent } from './build-event';
import {
  applyInPlace,
  decodeForStore,
  decodeMessage,
  encodeHeartbeat,
  encodeRevocation,
  InvalidMessageError,
} from './codec';
import { heartbeat, heartbeatV1 } from './heartbeat';
import { RevocationStore } from './revocation-store';
import { readCanonicalRevocation, vouchesForHeartbeat, vouchesForRevocation } from './quick-check';
import { SCHEMA_VERSION } from './topic';
import { revocationEvent, SESSION_REVOKED, type RevocationEvent } from './session-revoked.event';
import type { z } from 'zod';

// The quick check beside the zod schemas, on valid values and on every value one change away
// from them (a field left out, added, or given another value; at every depth): it vouches
// exactly for what the schemas accept, except strings with characters beyond the BMP (it
// measures in UTF-16 units, zod in code points), where it must leave the decision to the
// schema; and decodeMessage accepts exactly what the schemas accept either way.

const AT = Date.UTC(2026, 10, 29, 9, 0, 0, 123);
const INFINITY = '__infinity__'; // JSON has no Infinity: written as 1e400, which parses to it

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Values every field is tried with: of each type, and around every length and number bound. */
const ODD_VALUES: Json[] = [
  null,
  true,
  0,
  -1,
  0.5,
  2 ** 53,
  2 ** 53 - 1,
  100_000,
  100_001,
  INFINITY,
  '',
  'x',
  ...[128, 256, 512].flatMap((length) => ['x'.repeat(length), 'x'.repeat(length + 1)]),
  '😀'.repeat(128), // 256 UTF-16 units, 128 code points
  '😀'.repeat(129),
  [],
  ['x'],
  {},
  { en: 'x' },
  { format: 'opaque', id: 'x' },
  { format: 'opaque', id: 'x', extra: 1 },
  'opaque',
  'complex',
  'user',
  'system',
  'robot',
];

const isObject = (value: Json): value is { [key: string]: Json } =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Every value one change away from `value`: each as the JSON text a producer would send. */
function* oneChangeAway(value: Json): Generator<Json> {
  if (Array.isArray(value) || !isObject(value)) {
    yield* ODD_VALUES;
    return;
  }
  yield { ...value, extra: 'x' };
  for (const [key, field] of Object.entries(value)) {
    yield Object.fromEntries(Object.entries(value).filter(([other]) => other !== key));
    for (const changed of oneChangeAway(field)) yield { ...value, [key]: changed };
  }
}

const text = (value: Json) => JSON.stringify(value).replaceAll(`"${INFINITY}"`, '1e400');
const hasAstral = (json: string) => /[\ud800-\udbff]/.test(json) || /\\ud[89ab]/i.test(json);

function compare(
  values: Json[],
  schema: z.ZodType,
  vouches: (value: unknown) => boolean,
  decode: (value: string) => unknown,
) {
  let accepted = 0;
  for (const value of values) {
    const json = text(value);
    const parsed: unknown = JSON.parse(json);
    const valid = schema.safeParse(parsed);
    const context = `for ${json}`;
    // What it vouches for, the schema accepts; beyond the BMP it may leave it to the schema.
    const vouched = vouches(parsed);
    const expected = hasAstral(json) ? vouched && valid.success : valid.success;
    expect({ context, vouched }).toEqual({ context, vouched: expected });
    // Decoding accepts exactly what the schema accepts, and returns what it returns.
    if (valid.success) {
      expect({ context, decoded: decode(json) }).toEqual({ context, decoded: valid.data });
      accepted += 1;
    } else expect(() => decode(json)).toThrow(InvalidMessageError);
  }
  return accepted;
}

describe('the quick check of revocation events', () => {
  const event = (sessionId?: string) =>
    buildRevocationEvent({
      issuer: 'https://issuer.test',
      userId: 'alice',
      sessionId,
      initiatingEntity: 'user',
      reason: 'user_logout',
      at: AT,
    }) as unknown as Json;
  const withoutReason = event('s1') as { events: Record<string, Record<string, Json>> };
  delete withoutReason.events[SESSION_REVOKED]?.reason_admin;
  const valid = [event('s1'), event(), withoutReason as Json];
  const oneChange = valid.flatMap((value) => [value, ...oneChangeAway(value)]);

  it('vouches exactly for what the schema accepts, one change away from valid events', () => {
    const accepted = compare(oneChange, revocationEvent, vouchesForRevocation, (json) => {
      const decoded = decodeMessage(revocationMessage(json));
      return decoded.kind === 'revocation' ? decoded.event : decoded;
    });
    // Both sides of the comparison are well populated: valid variants and invalid ones.
    expect(accepted).toBeGreaterThan(50);
    expect(oneChange.length - accepted).toBeGreaterThan(500);
  });

  it('vouches for the events the contract encodes', () => {
    for (const sessionId of ['s1', undefined]) {
      const { value } = encodeRevocation(event(sessionId) as RevocationEvent);
      expect(vouchesForRevocation(JSON.parse(value))).toBe(true);
    }
  });

  describe('decodeForStore (the replay)', () => {
    // The same events as text: as the encoder writes them (read without JSON.parse) and as it
    // never would (white space, other key orders, escapes, number notations, non-ASCII text,
    // duplicate keys…), each also with a key other than the user id.
    const texts = [
      ...oneChange.map(text),
      ...valid.flatMap((value) => {
        const json = text(value);
        return [
          JSON.stringify(value, null, 1),
          `${json}\n`,
          ` ${json}`,
          json.replace('{"jti":', '{"iss":"x","jti":'),
          json.replace(/"iss":"[^"]*",/, '').replace('{', '{"iss":"x",'),
          json.replace('"jti":"', '"jti":"\\u0061'),
          json.replace('"iss":"https:', '"iss":"https:\\/'),
          json.replace('"id":"alice"', '"id":"al\\"ice"'),
          json.replace('"id":"alice"', '"id":"alicé"'),
          json.replace('"id":"alice"', '"id":"ali😀ce"'),
          json.replace('"en":"user_logout"', '"en":"user\\nlogout"'),
          json.replace(/"iat":\d+/, '"iat":1795942800.0'),
          json.replace(/"iat":\d+/, '"iat":1.7959428e9'),
          json.replace(/"iat":\d+/, '"iat":-0'),
          json.replace(/"iat":\d+/, '"iat":0'),
          json.replace(/"iat":\d+/, '"iat":0001'),
          json.replace(/"iat":\d+/, '"iat":9007199254740991'),
          json.replace(/"iat":\d+/, '"iat":9007199254740993'),
          json.replace(/"event_timestamp":[\d.]+/, '"event_timestamp":1e3'),
          json.replace(/"event_timestamp":[\d.]+/, '"event_timestamp":-0'),
          json.replace(/"event_timestamp":[\d.]+/, '"event_timestamp":0.'),
          json.replace(
            /"event_timestamp":[\d.]+/,
            '"event_timestamp":1795942800.12345678901234567890',
          ),
          json.replace(/"event_timestamp":[\d.]+/, '"event_timestamp":17959428001234567'),
          json.replace('"jti":', '"jti":"dup","jti":'),
          json.replace('"format":"complex",', '"format":"complex","format":"complex",'),
          json.replace('"format":"opaque"', '"format":"opaque","format":"other"'),
          json.slice(0, -1),
          `${json}}`,
        ];
      }),
    ];

    it('accepts and refuses exactly what decodeMessage does, with its errors', () => {
      let fast = 0;
      for (const json of texts)
        for (const key of [undefined, 'bob']) {
          const message = revocationMessage(json, key);
          const context = `for ${json} keyed ${message.key}`;
          expect({ context, decoded: outcome(() => decodeForStore(message)) }).toEqual({
            context,
            decoded: outcome(() => storePart(decodeMessage(message))),
          });
          if (readCanonicalRevocation(Buffer.from(json)) === undefined) continue;
          // What it reads without the schema, the schema accepts.
          expect({ context, valid: revocationEvent.safeParse(JSON.parse(json)).success }).toEqual({
            context,
            valid: true,
          });
          fast += 1;
        }
      expect(fast).toBeGreaterThan(50);
    });

    it('reads a value inside larger bytes (a fetch answer) as alone, never past its end', () => {
      // Every value cut short and every value with one character changed, padded with what
      // would complete it: a read past its end would accept it.
      const encoded = text(valid[0]!);
      const changed = Array.from(encoded).flatMap((_, at) =>
        ['"', '\\', '0', 'x', '}', ',', '.', 'é', '\u0000'].map(
          (character) => encoded.slice(0, at) + character + encoded.slice(at + 1),
        ),
      );
      const cut = Array.from(encoded, (_, length) => encoded.slice(0, length));
      let read = 0;
      for (const json of [...texts, ...cut, ...changed]) {
        const value = Buffer.from(json);
        const padded = Buffer.concat([Buffer.from('{"jti":'), value, Buffer.from('}}}')]);
        const context = `for ${json}`;
        const alone = readCanonicalRevocation(value);
        expect({ context, inside: readCanonicalRevocation(padded, 7, 7 + value.length) }).toEqual({
          context,
          inside: alone,
        });
        if (alone) read += 1;
      }
      expect(read).toBeGreaterThan(30);
    });

    it('applies in place (a fetch answer) exactly the events decodeForStore reads without the schema', () => {
      let inPlace = 0;
      for (const json of texts)
        for (const key of [undefined, 'bob'])
          for (const version of [SCHEMA_VERSION, `${SCHEMA_VERSION}0`]) {
            const message = { ...revocationMessage(json, key) };
            message.headers = { ...message.headers, 'schema-version': Buffer.from(version) };
            const context = `for ${json} keyed ${message.key} version ${version}`;
            const key_ = Buffer.from(message.key);
            // Key and value inside a larger buffer, as in an answer to a fetch.
            const buffer = Buffer.concat([
              Buffer.from('{{'),
              key_,
              message.value,
              Buffer.from('}}}'),
            ]);
            const store = new RevocationStore({ retentionMs: 1e12 });
            const changed = applyInPlace(store, {
              buffer,
              keyStart: 2,
              keyEnd: 2 + key_.length,
              valueStart: 2 + key_.length,
              valueEnd: buffer.length - 3,
              headerIs: (name, value) =>
                String((message.headers as Record<string, Buffer>)[name]) === value,
            });
            const quick =
              readCanonicalRevocation(message.value) !== undefined && version === SCHEMA_VERSION;
            const decoded = outcome(() => decodeForStore(message));
            if (changed === undefined) {
              // Left to decodeForStore: one it does not read without the schema.
              const keyed = quick && readCanonicalRevocation(message.value)?.userId === message.key;
              expect({ context, keyed }).toEqual({ context, keyed: false });
              continue;
            }
            inPlace += 1;
            const stored = (decoded as { value: { userId: string; sessionId?: string } }).value;
            const expected = new RevocationStore({ retentionMs: 1e12 });
            expect({ context, changed }).toEqual({
              context,
              changed: expected.applyRevoked(stored as Parameters<typeof expected.applyRevoked>[0]),
            });
            expect({ context, size: store.size() }).toEqual({ context, size: expected.size() });
            const token = { sid: stored.sessionId ?? 'other', sub: stored.userId, iat: 0 };
            expect({ context, check: store.check(token) }).toEqual({
              context,
              check: expected.check(token),
            });
          }
      expect(inPlace).toBeGreaterThan(50);
    });

    it('reads the events the contract encodes without JSON.parse, into strings of their own', () => {
      for (const [sessionId, reason, jti] of [
        ['s1', 'user_logout', 'j'],
        [undefined, 'x'.repeat(256), 'j'.repeat(128)],
        ['s'.repeat(256), 'r', 'j'],
      ] as const) {
        const revocation = buildRevocationEvent(
          {
            issuer: 'i'.repeat(512),
            userId: 'u'.repeat(256),
            sessionId,
            initiatingEntity: 'system',
            reason,
            at: AT,
          },
          jti,
        );
        const { value } = encodeRevocation(revocation);
        expect(readCanonicalRevocation(Buffer.from(value))).toEqual({
          userId: 'u'.repeat(256),
          sessionId,
          eventTimestamp: AT / 1000,
        });
      }
    });
  });
});

/** A revocation message with this value, keyed by its user id (or `key`). */
function revocationMessage(json: string, key?: string) {
  let userId: unknown;
  try {
    const parsed = JSON.parse(json) as { events?: Record<string, { subject?: { user?: Json } }> };
    const user = parsed.events?.[SESSION_REVOKED]?.subject?.user;
    userId = isObject(user ?? null) ? (user as { id?: Json }).id : undefined;
  } catch {
    userId = undefined;
  }
  return {
    key: key ?? (typeof userId === 'string' ? userId : 'alice'),
    value: Buffer.from(json),
    headers: { kind: Buffer.from('revocation'), 'schema-version': Buffer.from(SCHEMA_VERSION) },
  };
}

/** What decodeMessage gives the store: decodeForStore's answer for the same message. */
function storePart(decoded: ReturnType<typeof decodeMessage>) {
  if (decoded.kind === 'heartbeat') return decoded;
  const { subject, event_timestamp } = decoded.event.events[SESSION_REVOKED];
  return {
    kind: decoded.kind,
    userId: subject.user.id,
    sessionId: subject.session?.id,
    eventTimestamp: event_timestamp,
  };
}

function outcome(decode: () => unknown) {
  try {
    return { value: decode() };
  } catch (error) {
    return { error: error instanceof InvalidMessageError ? error.message : error };
  }
}

describe('the quick check of heartbeats', () => {
  const beat = { publisher_id: 'p1', sent_at: AT, interval_ms: 1000, partitions: 12 };
  const beatV1 = { publisher_id: 'p1', sent_at: AT, interval_ms: 1000 };

  it('vouches exactly for what the schema of each version accepts', () => {
    for (const [version, schema, valid] of [
      ['2', heartbeat, beat],
      ['1', heartbeatV1, beatV1],
    ] as const) {
      const headers = { ...encodeHeartbeat(beat, 0).headers, 'schema-version': version };
      const values = [valid, ...oneChangeAway(valid)];
      const accepted = compare(
        values,
        schema,
        (value) => vouchesForHeartbeat(value, version === '2'),
        (json) => {
          const decoded = decodeMessage({ value: json, headers });
          expect(decodeForStore({ value: json, headers })).toEqual(decoded);
          return decoded.kind === 'heartbeat' ? decoded.heartbeat : decoded;
        },
      );
      expect(accepted).toBeGreaterThan(10);
      expect(values.length - accepted).toBeGreaterThan(50);
    }
  });
});
