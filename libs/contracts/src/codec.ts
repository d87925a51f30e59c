import type { z } from 'zod';
import { heartbeat, heartbeatV1, type Heartbeat, type HeartbeatV1 } from './heartbeat';
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

/** Why a message could not be decoded; the consumer counts it and parks it in the DLQ. */
export class InvalidMessageError extends Error {
  override readonly name = 'InvalidMessageError';
}

function header(message: WireMessage, name: string): string | undefined {
  const value = message.headers?.[name];
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined ? undefined : first.toString();
}

function parse<S extends z.ZodType>(
  schema: S,
  value: WireMessage['value'],
  what: string,
): z.output<S> {
  if (value === null) throw new InvalidMessageError(`${what}: empty value`);
  let json: unknown;
  try {
    json = JSON.parse(value.toString());
  } catch {
    throw new InvalidMessageError(`${what}: value is not JSON`);
  }
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
      const event = parse(revocationEvent, message.value, 'revocation');
      const key = message.key?.toString();
      if (key !== partitionKey(event))
        throw new InvalidMessageError('revocation: key is not the subject user id');
      return { kind, key, event };
    }
    case MessageKind.Heartbeat:
      if (version === HEARTBEAT_SCHEMA_VERSION)
        return { kind, heartbeat: parse(heartbeat, message.value, 'heartbeat') };
      if (version === '1')
        return { kind, heartbeat: parse(heartbeatV1, message.value, 'heartbeat') };
      throw unsupported();
    default:
      throw new InvalidMessageError(`unknown message kind ${kind}`);
  }
}
