// A hand-written check of the values on the revocation topic, for the consumers' hot path: a
// guard replays up to millions of them on start, and the zod schemas (which stay the contract)
// cost as much as the JSON parsing before them. The check only ever vouches: a value it accepts
// is one the schema accepts, and the value as parsed is what the schema would return (strict
// objects: an equal copy); a value it does not vouch for goes to the schema, which accepts it or
// says why not. So decoding accepts exactly what the schemas accept, and says the same.
//
// Every rule here is the schema's or stricter (strings are measured in UTF-16 units, never more
// than the code points zod counts); quick-check.spec.ts holds the two side by side.
import type { Heartbeat, HeartbeatV1 } from './heartbeat';
import { SESSION_REVOKED, type RevocationEvent } from './session-revoked.event';

type Fields = Record<string, unknown>;

const INITIATING_ENTITIES: ReadonlySet<unknown> = new Set(['user', 'admin', 'policy', 'system']);

/** A plain object with exactly `count` enumerable keys (own or inherited, as zod sees them). */
function objectWithKeys(value: unknown, count: number): value is Fields {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  let keys = 0;
  // for…in, as zod looks for unrecognized keys; and no array allocated, unlike Object.keys.
  // eslint-disable-next-line @typescript-eslint/no-unused-vars -- only counted
  for (const _key in value) keys += 1;
  return keys === count;
}

const text = (value: unknown, max: number): boolean =>
  typeof value === 'string' && value.length >= 1 && value.length <= max;

const nonNegativeInt = (value: unknown): value is number =>
  Number.isSafeInteger(value) && (value as number) >= 0;

/** `{ format: 'opaque', id }`, the id 1 to 256 characters. */
const opaque = (value: unknown): boolean =>
  objectWithKeys(value, 2) && value.format === 'opaque' && text(value.id, 256);

function sessionRevoked(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const event = value as Fields;
  const reason = event.reason_admin;
  if (!objectWithKeys(event, reason === undefined ? 3 : 4)) return false;
  if (reason !== undefined && !(objectWithKeys(reason, 1) && text(reason.en, 256))) return false;
  const subject = event.subject;
  if (typeof subject !== 'object' || subject === null) return false;
  const { format, user, session } = subject as Fields;
  const timestamp = event.event_timestamp;
  return (
    objectWithKeys(subject, session === undefined ? 2 : 3) &&
    format === 'complex' &&
    opaque(user) &&
    (session === undefined || opaque(session)) &&
    typeof timestamp === 'number' &&
    Number.isFinite(timestamp) &&
    timestamp >= 0 &&
    INITIATING_ENTITIES.has(event.initiating_entity)
  );
}

/** True only for a value the `revocationEvent` schema accepts (false: ask the schema). */
export function vouchesForRevocation(value: unknown): value is RevocationEvent {
  return (
    objectWithKeys(value, 4) &&
    text(value.jti, 128) &&
    text(value.iss, 512) &&
    nonNegativeInt(value.iat) &&
    objectWithKeys(value.events, 1) &&
    sessionRevoked(value.events[SESSION_REVOKED])
  );
}

/**
 * True only for a value the `heartbeat` schema (version 2) or, with `withPartitions` false,
 * `heartbeatV1` accepts (false: ask the schema).
 */
export function vouchesForHeartbeat(
  value: unknown,
  withPartitions: boolean,
): value is Heartbeat | HeartbeatV1 {
  if (!objectWithKeys(value, withPartitions ? 4 : 3)) return false;
  const { publisher_id, sent_at, interval_ms, partitions } = value;
  return (
    text(publisher_id, 128) &&
    nonNegativeInt(sent_at) &&
    nonNegativeInt(interval_ms) &&
    interval_ms > 0 &&
    (!withPartitions || (nonNegativeInt(partitions) && partitions > 0 && partitions <= 100_000))
  );
}

/** What the revocation store keeps of an event (see RevocationStore.applyRevoked). */
export interface StoredRevocation {
  userId: string;
  /** Absent: every session of the user that existed at `eventTimestamp` ended. */
  sessionId: string | undefined;
  /** The event's `event_timestamp`: seconds since the epoch, with millisecond fractions. */
  eventTimestamp: number;
}

/** A JSON string of 1 to `max` printable ASCII characters, none escaped: its text is its value. */
const plain = (max: number, capture = false) =>
  `"${capture ? '(' : ''}[\\x20\\x21\\x23-\\x5b\\x5d-\\x7e]{1,${max}}${capture ? ')' : ''}"`;
const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/**
 * A valid revocation event exactly as the contract's encoder writes it (JSON.stringify of the
 * schema's output: its keys in the schema's order, no white space), every string plain (above),
 * `iat` of at most 15 digits (a safe integer), `event_timestamp` a plain decimal. Captures the
 * user id, the session id and `event_timestamp`. Every text it matches is valid JSON whose value
 * the schema accepts; other texts, valid or not, are left to JSON.parse and the schema.
 */
const CANONICAL_REVOCATION = new RegExp(
  [
    `^\\{"jti":${plain(128)},"iss":${plain(512)},"iat":(?:0|[1-9][0-9]{0,14}),`,
    `"events":\\{"${literal(SESSION_REVOKED)}":\\{`,
    `"subject":\\{"format":"complex","user":\\{"format":"opaque","id":${plain(256, true)}\\}`,
    `(?:,"session":\\{"format":"opaque","id":${plain(256, true)}\\})?\\},`,
    `"event_timestamp":((?:0|[1-9][0-9]{0,15})(?:\\.[0-9]{1,17})?),`,
    `"initiating_entity":"(?:user|admin|policy|system)"`,
    `(?:,"reason_admin":\\{"en":${plain(256)}\\})?\\}\\}\\}$`,
  ].join(''),
);

/**
 * A substring of the message's text would keep all of it alive (V8 slices strings), for as
 * long as the store holds the id: a string of its own instead. (JSON.parse of a plain JSON
 * string: no quote or backslash in it to escape.)
 */
const ownCopy = (plainText: string): string => JSON.parse(`"${plainText}"`) as string;

/**
 * The store's part of a revocation event written as the contract's encoder writes it, read
 * without JSON.parse or the schema: for a replay of millions. Undefined for any other text,
 * valid or not: decode that with decodeMessage, which decides.
 */
export function readCanonicalRevocation(text: string): StoredRevocation | undefined {
  const match = CANONICAL_REVOCATION.exec(text);
  if (match === null) return undefined;
  const [, userId = '', sessionId, timestamp = ''] = match;
  return {
    userId: ownCopy(userId),
    sessionId: sessionId === undefined ? undefined : ownCopy(sessionId),
    eventTimestamp: Number(timestamp),
  };
}
