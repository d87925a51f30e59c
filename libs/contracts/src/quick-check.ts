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

const latin1 = (text: string) => Buffer.from(text, 'latin1');
const JTI = latin1('{"jti":');
const ISS = latin1(',"iss":');
const IAT = latin1(',"iat":');
const USER = latin1(
  `,"events":{"${SESSION_REVOKED}":{"subject":{"format":"complex","user":{"format":"opaque","id":`,
);
const CLOSE = latin1('}');
const SESSION = latin1(',"session":{"format":"opaque","id":');
const EVENT_TIMESTAMP = latin1('},"event_timestamp":');
const INITIATING_ENTITY = latin1(',"initiating_entity":"');
const ENTITIES = [...INITIATING_ENTITIES].map((entity) => latin1(`${String(entity)}"`));
const REASON = latin1(',"reason_admin":{"en":');
const END = latin1('}}}');
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;

const isDigit = (byte: number | undefined) => byte !== undefined && byte >= ZERO && byte <= NINE;

/** After `literal` at `at`, or -1. */
function skipLiteral(bytes: Buffer, at: number, end: number, literal: Buffer): number {
  if (at < 0 || end - at < literal.length) return -1;
  for (let index = 0; index < literal.length; index += 1)
    if (bytes[at + index] !== literal[index]) return -1;
  return at + literal.length;
}

/**
 * After a plain JSON string of 1 to `max` characters at `at`, or -1: printable ASCII, none
 * escaped (no quote or backslash), so its text is its value.
 */
function skipPlain(bytes: Buffer, at: number, end: number, max: number): number {
  if (at < 0 || at >= end || bytes[at] !== QUOTE) return -1;
  let index = at + 1;
  const limit = Math.min(end, index + max + 1);
  while (index < limit) {
    const byte = bytes[index] ?? 0;
    if (byte === QUOTE) return index === at + 1 ? -1 : index + 1;
    if (byte < 0x20 || byte > 0x7e || byte === BACKSLASH) return -1;
    index += 1;
  }
  return -1; // longer than `max`, or the end came first
}

/** After 1 to `max` digits at `at`, none of them a leading zero unless alone; or -1. */
function skipInteger(bytes: Buffer, at: number, end: number, max: number): number {
  if (at < 0 || at >= end) return -1;
  if (bytes[at] === ZERO) return at + 1;
  let index = at;
  while (index < end && index - at < max && isDigit(bytes[index])) index += 1;
  return index === at ? -1 : index;
}

/** Where readCanonicalRevocationSpans found the ids in the bytes (ASCII: a byte a character). */
export interface CanonicalRevocationSpans {
  userStart: number;
  userEnd: number;
  /** -1 when the event has no session (every session of the user). */
  sessionStart: number;
  sessionEnd: number;
  eventTimestamp: number;
}

/**
 * The store's part of a revocation event written exactly as the contract's encoder writes it
 * (JSON.stringify of the schema's output: its keys in the schema's order, no white space), read
 * from the UTF-8 bytes of the value in place, without JSON.parse or the schema: for a replay of
 * millions. Every string in it plain (see skipPlain), `iat` of at most 15 digits (a safe
 * integer), `event_timestamp` a plain decimal: every value it reads is valid JSON that the schema
 * accepts. Undefined for any other value, valid or not (a value that is not ASCII never reads):
 * decode that with decodeMessage, which decides. `bytes` may hold more than the value (a fetch's
 * answer): nothing outside [start, end) is read. Where the ids are: see readCanonicalRevocation
 * for them as strings.
 */
export function readCanonicalRevocationSpans(
  bytes: Buffer,
  start: number,
  end: number,
): CanonicalRevocationSpans | undefined {
  let at = skipPlain(bytes, skipLiteral(bytes, start, end, JTI), end, 128);
  at = skipPlain(bytes, skipLiteral(bytes, at, end, ISS), end, 512);
  at = skipInteger(bytes, skipLiteral(bytes, at, end, IAT), end, 15);
  const userStart = skipLiteral(bytes, at, end, USER) + 1;
  at = skipPlain(bytes, userStart - 1, end, 256);
  if (at < 0) return undefined;
  const userEnd = at - 1;
  at = skipLiteral(bytes, at, end, CLOSE);
  let sessionStart = -1;
  let sessionEnd = -1;
  const session = skipLiteral(bytes, at, end, SESSION);
  if (session >= 0) {
    at = skipPlain(bytes, session, end, 256);
    if (at < 0) return undefined;
    sessionStart = session + 1;
    sessionEnd = at - 1;
    at = skipLiteral(bytes, at, end, CLOSE);
  }
  const timestampStart = skipLiteral(bytes, at, end, EVENT_TIMESTAMP);
  at = skipInteger(bytes, timestampStart, end, 16);
  if (at >= 0 && at < end && bytes[at] === DOT) {
    const fraction = at + 1;
    at = fraction;
    while (at < end && at - fraction < 17 && isDigit(bytes[at])) at += 1;
    if (at === fraction) return undefined;
  }
  if (at < 0) return undefined;
  const timestampEnd = at;
  at = skipLiteral(bytes, at, end, INITIATING_ENTITY);
  if (at < 0) return undefined;
  let entity = -1;
  for (const candidate of ENTITIES) {
    entity = skipLiteral(bytes, at, end, candidate);
    if (entity >= 0) break;
  }
  at = entity;
  const reason = skipLiteral(bytes, at, end, REASON);
  if (reason >= 0) at = skipLiteral(bytes, skipPlain(bytes, reason, end, 256), end, CLOSE);
  if (skipLiteral(bytes, at, end, END) !== end) return undefined;
  return {
    userStart,
    userEnd,
    sessionStart,
    sessionEnd,
    eventTimestamp: Number(bytes.toString('latin1', timestampStart, timestampEnd)),
  };
}

/** readCanonicalRevocationSpans with the ids as strings of their own. */
export function readCanonicalRevocation(
  bytes: Buffer,
  start = 0,
  end = bytes.length,
): StoredRevocation | undefined {
  const spans = readCanonicalRevocationSpans(bytes, start, end);
  if (spans === undefined) return undefined;
  const { userStart, userEnd, sessionStart, sessionEnd, eventTimestamp } = spans;
  return {
    userId: bytes.toString('latin1', userStart, userEnd),
    sessionId: sessionStart < 0 ? undefined : bytes.toString('latin1', sessionStart, sessionEnd),
    eventTimestamp,
  };
}
