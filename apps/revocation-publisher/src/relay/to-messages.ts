import {
  DLQ_REASON_HEADER,
  DLQ_SOURCE_HEADER,
  encodeRevocation,
  OutboxField,
  partitionKey,
  revocationEvent,
} from '@app/contracts';
import type { OutboxEntry } from '../outbox/outbox-entry';
import type { OutgoingMessage } from './revocation-sink';

export interface Translated {
  events: OutgoingMessage[];
  deadLetters: OutgoingMessage[];
  /** Entries deleted while pending: nothing to send, only to acknowledge. */
  skipped: number;
}

/**
 * Turns outbox entries into topic messages, in entry order. An entry that does not hold a
 * valid event for its key goes to the dead-letter topic, unchanged, with the reason.
 */
export function toMessages(entries: OutboxEntry[]): Translated {
  const result: Translated = { events: [], deadLetters: [], skipped: 0 };
  for (const entry of entries) {
    if (Object.keys(entry.fields).length === 0) {
      result.skipped += 1;
      continue;
    }
    const problem = validate(entry.fields);
    if (typeof problem === 'string') {
      result.deadLetters.push({
        key: entry.fields[OutboxField.Key] ?? null,
        value: JSON.stringify(entry.fields),
        headers: {
          [DLQ_REASON_HEADER]: problem,
          [DLQ_SOURCE_HEADER]: `redis:${entry.stream}/${entry.id}`,
        },
      });
    } else {
      result.events.push(problem);
    }
  }
  return result;
}

function validate(fields: Record<string, string>): OutgoingMessage | string {
  const raw = fields[OutboxField.Event];
  if (raw === undefined) return `outbox entry has no "${OutboxField.Event}" field`;
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return 'event is not JSON';
  }
  const parsed = revocationEvent.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return `event ${issue?.path.join('.') || '(value)'}: ${issue?.message ?? 'invalid'}`;
  }
  if (fields[OutboxField.Key] !== partitionKey(parsed.data))
    return 'entry key is not the subject user id';
  return encodeRevocation(parsed.data);
}
