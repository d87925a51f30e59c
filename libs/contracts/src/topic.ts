/** Default name of the revocation topic. */
export const REVOCATION_TOPIC = 'session-revocations.v1';

/** The dead-letter topic beside a topic: where malformed messages are parked. */
export const deadLetterTopic = (topic: string): string => `${topic}.dlq`;

/** Kafka header telling message kinds apart; consumers never guess from the value. */
export const KIND_HEADER = 'kind';
/** Kafka header carrying the value's schema version (per message kind). */
export const SCHEMA_VERSION_HEADER = 'schema-version';
/** Schema version of revocation events. */
export const SCHEMA_VERSION = '1';
/** Schema version of heartbeats written now; consumers also read version 1 (see heartbeat.ts). */
export const HEARTBEAT_SCHEMA_VERSION = '2';
/** On dead letters: why the message was parked, and where it came from. */
export const DLQ_REASON_HEADER = 'dlq-reason';
export const DLQ_SOURCE_HEADER = 'dlq-source';

export const MessageKind = {
  Revocation: 'revocation',
  Heartbeat: 'heartbeat',
} as const;
export type MessageKind = (typeof MessageKind)[keyof typeof MessageKind];
