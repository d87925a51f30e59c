import { buildRevocationEvent, DLQ_REASON_HEADER, DLQ_SOURCE_HEADER } from '@app/contracts';
import type { OutboxEntry } from '../outbox/outbox-entry';
import { toMessages } from './to-messages';

const event = buildRevocationEvent(
  {
    issuer: 'http://issuer',
    userId: 'alice',
    sessionId: 's1',
    initiatingEntity: 'user',
    reason: 'user_logout',
    at: 1_000,
  },
  'j1',
);
const entry = (id: string, fields: Record<string, string>): OutboxEntry => ({
  shard: 0,
  stream: 'sr:{o0}:outbox',
  id,
  fields,
});

describe('toMessages', () => {
  it('encodes valid entries in order and parks the rest with a reason and their source', () => {
    const result = toMessages([
      entry('1-0', { key: 'alice', event: JSON.stringify(event) }),
      entry('2-0', { key: 'bob', event: JSON.stringify(event) }),
      entry('3-0', { key: 'alice', event: 'not json' }),
      entry('4-0', {}),
      entry('5-0', { key: 'alice', event: JSON.stringify({ ...event, jti: '' }) }),
    ]);
    expect(result.events).toEqual([
      {
        key: 'alice',
        value: JSON.stringify(event),
        headers: { kind: 'revocation', 'schema-version': '1', 'content-type': 'application/json' },
      },
    ]);
    expect(result.skipped).toBe(1);
    expect(
      result.deadLetters.map((letter) => [letter.key, letter.headers[DLQ_REASON_HEADER]]),
    ).toEqual([
      ['bob', 'entry key is not the subject user id'],
      ['alice', 'event is not JSON'],
      ['alice', expect.stringMatching(/^event jti: /)],
    ]);
    expect(result.deadLetters[0]?.headers[DLQ_SOURCE_HEADER]).toBe('redis:sr:{o0}:outbox/2-0');
    expect(JSON.parse(result.deadLetters[1]!.value)).toEqual({ key: 'alice', event: 'not json' });
  });
});
