/** A message ready for the topic (key = user id) or the dead-letter topic. */
export interface OutgoingMessage {
  key: string | null;
  value: string;
  headers: Record<string, string>;
}

/**
 * Where relayed events go. `publish` resolves only once the broker has acknowledged every
 * message (acks = all), or rejects; the relay acknowledges outbox entries only after that.
 */
export interface RevocationSink {
  publish(events: OutgoingMessage[], deadLetters: OutgoingMessage[]): Promise<void>;
  /**
   * Whether `error` refuses these very messages for good (too large, invalid): sending them
   * again cannot succeed, but sending fewer of them may. Anything else (the broker down, no
   * leader, no permission) is retried as it is.
   */
  refusesForGood(error: unknown): boolean;
}

export const REVOCATION_SINK = Symbol('REVOCATION_SINK');
