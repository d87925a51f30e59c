import type { z } from 'zod';
import type { RevocationStore } from './revocation-store';
import { heartbeat, heartbeatV1, type Heartbeat, type HeartbeatV1 } from './heartbeat';
import {
  readCanonicalRevocation,
  readCanonicalRevocationSpans,
  vouchesForHeartbeat,
  vouchesForRevocation,
  type StoredRevocation,
} from './quick-check';
import { revocationEvent, SESSION_REVOKED, type RevocationEvent } from './session-revoked.event';
import {
  HEARTBEAT_SCHEMA_VERSION,
  KIND_HEADER,
  MessageKind,
  SCHEMA_VERSION,
  SCHEMA_VERSION_HEADER,
} from './topic';

/** A Kafka message as KafkaJS gives or takes it (headers as strings or buffers). */
export interface WireMessage {
  key?: Buffer | string | null;
  value: Buffer | string | null;
  headers?: Record<string, Buffer | string | (Buffer | string)[] | undefined>;
}

export type Decoded =
  | { kind: typeof MessageKind.Revocation; key: string; event: RevocationEvent }
  | { kind: typeof MessageKind.Heartbeat; heartbeat: Heartbeat | HeartbeatV1 };

/** A message as decodeForStore gives it: of a revocation only what the store keeps. */
export type DecodedForStore =
  | ({ kind: typeof MessageKind.Revocation } & StoredRevocation)
  | Extract<Decoded, { kind: typeof MessageKind.Heartbeat }>;

/** Why a message could not be decoded; the consumer counts it and parks it in the DLQ. */
export class InvalidMessageError extends Error {
  override readonly name = 'InvalidMessageError';
}

function header(message: WireMessage, name: string): string | undefined {
  const value = message.headers?.[name];
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined ? undefined : first.toString();
}

/**
 * The value as JSON, validated by `schema`. `vouches` (quick-check.ts) answers first, for most
 * values: one it vouches for is returned as parsed; the schema decides on the others.
 */
function parse<S extends z.ZodType>(
  schema: S,
  value: WireMessage['value'],
  what: string,
  vouches: (json: unknown) => json is z.output<S>,
): z.output<S> {
  if (value === null) throw new InvalidMessageError(`${what}: empty value`);
  let json: unknown;
  try {
    json = JSON.parse(value.toString());
  } catch {
    throw new InvalidMessageError(`${what}: value is not JSON`);
  }
  if (vouches(json)) return json;
  const result = schema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new InvalidMessageError(
      `${what}: ${issue?.path.join('.') || '(value)'}: ${issue?.message ?? 'invalid'}`,
    );
  }
  return result.data;
}

const headersFor = (kind: MessageKind, version: string) => ({
  [KIND_HEADER]: kind,
  [SCHEMA_VERSION_HEADER]: version,
  'content-type': 'application/json',
});

/** The Kafka message for a revocation: key = user id (one user's events stay in order). */
export function encodeRevocation(event: RevocationEvent) {
  const valid = revocationEvent.parse(event);
  return {
    key: partitionKey(valid),
    value: JSON.stringify(valid),
    headers: headersFor(MessageKind.Revocation, SCHEMA_VERSION),
  };
}

export function encodeHeartbeat(value: Heartbeat, partition: number) {
  return {
    partition,
    key: null,
    value: JSON.stringify(heartbeat.parse(value)),
    headers: headersFor(MessageKind.Heartbeat, HEARTBEAT_SCHEMA_VERSION),
  };
}

/** The partition key rule: the user id of the event's subject. */
export function partitionKey(event: RevocationEvent): string {
  return event.events[SESSION_REVOKED].subject.user.id;
}

const isHeartbeat = (json: unknown): json is Heartbeat => vouchesForHeartbeat(json, true);
const isHeartbeatV1 = (json: unknown): json is HeartbeatV1 => vouchesForHeartbeat(json, false);

/** Validates a message from the topic by its kind header; throws InvalidMessageError. */
export function decodeMessage(message: WireMessage): Decoded {
  const kind = header(message, KIND_HEADER);
  const version = header(message, SCHEMA_VERSION_HEADER);
  if (kind === undefined) throw new InvalidMessageError('unknown message kind (no kind header)');
  const unsupported = () =>
    new InvalidMessageError(`unsupported schema version ${String(version)} of ${kind}`);
  switch (kind) {
    case MessageKind.Revocation: {
      if (version !== SCHEMA_VERSION) throw unsupported();
      const event = parse(revocationEvent, message.value, 'revocation', vouchesForRevocation);
      const key = message.key?.toString();
      if (key !== partitionKey(event))
        throw new InvalidMessageError('revocation: key is not the subject user id');
      return { kind, key, event };
    }
    case MessageKind.Heartbeat:
      if (version === HEARTBEAT_SCHEMA_VERSION)
        return { kind, heartbeat: parse(heartbeat, message.value, 'heartbeat', isHeartbeat) };
      if (version === '1')
        return { kind, heartbeat: parse(heartbeatV1, message.value, 'heartbeat', isHeartbeatV1) };
      throw unsupported();
    default:
      throw new InvalidMessageError(`unknown message kind ${kind}`);
  }
}

/**
 * A message's parts where they lie in a buffer (a fetch's answer), as a reader below KafkaJS has
 * them (the guard's history reader).
 */
export interface MessageInPlace {
  readonly buffer: Buffer;
  /** -1 for a null key or value. */
  readonly keyStart: number;
  readonly keyEnd: number;
  readonly valueStart: number;
  readonly valueEnd: number;
  /** Whether the message's first header called `name` holds exactly `value` (both ASCII). */
  headerIs(name: string, value: string): boolean;
}

/**
 * decodeForStore, then `store.applyRevoked`, for a message read in place: a revocation written
 * as the contract's encoder writes it (headers, key = the user id, the value as
 * readCanonicalRevocationSpans reads it) is applied without a copy of it. Returns whether it
 * changed the store; undefined for any other message, which decodeForStore then decides on
 * (exactly the messages it reads without the schema are applied here).
 */
export function applyInPlace(store: RevocationStore, message: MessageInPlace): boolean | undefined {
  const { buffer, keyStart, keyEnd, valueStart, valueEnd } = message;
  if (
    keyStart < 0 ||
    valueStart < 0 ||
    !message.headerIs(KIND_HEADER, MessageKind.Revocation) ||
    !message.headerIs(SCHEMA_VERSION_HEADER, SCHEMA_VERSION)
  )
    return undefined;
  const spans = readCanonicalRevocationSpans(buffer, valueStart, valueEnd);
  if (spans === undefined) return undefined;
  const { userStart, userEnd, sessionStart, sessionEnd, eventTimestamp } = spans;
  // The key must be the user id: the same bytes (the id is ASCII, so the same text).
  if (keyEnd - keyStart !== userEnd - userStart) return undefined;
  for (let index = 0; index < keyEnd - keyStart; index += 1)
    if (buffer[keyStart + index] !== buffer[userStart + index]) return undefined;
  if (sessionStart >= 0)
    return store.applyRevokedSession(buffer, sessionStart, sessionEnd, eventTimestamp);
  const userId = buffer.toString('latin1', userStart, userEnd);
  return store.applyRevoked({ userId, sessionId: undefined, eventTimestamp });
}

/**
 * decodeMessage for a consumer that only applies revocations to its store (a replay of the
 * topic): accepts and refuses exactly the messages decodeMessage does, with the same errors, but
 * gives of a revocation only what the store keeps. A revocation written as the contract's
 * encoder writes it is read without JSON.parse or the schema (readCanonicalRevocation); any
 * other message goes through decodeMessage.
 */
export function decodeForStore(message: WireMessage): DecodedForStore {
  const { value } = message;
  if (
    value !== null &&
    header(message, KIND_HEADER) === MessageKind.Revocation &&
    header(message, SCHEMA_VERSION_HEADER) === SCHEMA_VERSION
  ) {
    const revoked = readCanonicalRevocation(typeof value === 'string' ? Buffer.from(value) : value);
    if (revoked !== undefined && message.key?.toString() === revoked.userId)
      return { kind: MessageKind.Revocation, ...revoked };
  }
  const decoded = decodeMessage(message);
  if (decoded.kind === MessageKind.Heartbeat) return decoded;
  const { subject, event_timestamp } = decoded.event.events[SESSION_REVOKED];
  return {
    kind: decoded.kind,
    userId: subject.user.id,
    sessionId: subject.session?.id,
    eventTimestamp: event_timestamp,
  };
}
