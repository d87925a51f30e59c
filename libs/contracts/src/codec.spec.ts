import { buildRevocationEvent } from './build-event';
import {
  decodeMessage,
  encodeHeartbeat,
  encodeRevocation,
  InvalidMessageError,
  partitionKey,
} from './codec';
import { SESSION_REVOKED } from './session-revoked.event';

const AT = Date.UTC(2026, 10, 29, 9, 0, 0, 123);

describe('revocation events', () => {
  const oneSession = buildRevocationEvent(
    {
      issuer: 'http://127.0.0.1:3000',
      userId: 'alice',
      sessionId: 's1',
      initiatingEntity: 'user',
      reason: 'user_logout',
      at: AT,
    },
    'jti-1',
  );
  const allSessions = buildRevocationEvent({
    issuer: 'http://127.0.0.1:3000',
    userId: 'alice',
    initiatingEntity: 'admin',
    reason: 'admin',
    at: AT,
  });

  it('builds the CAEP session-revoked SET payload with millisecond event time', () => {
    expect(oneSession).toEqual({
      jti: 'jti-1',
      iss: 'http://127.0.0.1:3000',
      iat: Math.floor(AT / 1000),
      events: {
        [SESSION_REVOKED]: {
          subject: {
            format: 'complex',
            user: { format: 'opaque', id: 'alice' },
            session: { format: 'opaque', id: 's1' },
          },
          event_timestamp: AT / 1000,
          initiating_entity: 'user',
          reason_admin: { en: 'user_logout' },
        },
      },
    });
    expect(allSessions.events[SESSION_REVOKED].subject).not.toHaveProperty('session');
    expect(allSessions.jti).not.toBe(
      buildRevocationEvent({
        ...oneSession,
        issuer: 'x',
        userId: 'u',
        initiatingEntity: 'user',
        reason: 'r',
        at: AT,
      }).jti,
    );
  });

  it('round-trips through the wire format, keyed by user id', () => {
    const message = encodeRevocation(oneSession);
    expect(message.key).toBe('alice');
    expect(message.headers).toEqual({
      kind: 'revocation',
      'schema-version': '1',
      'content-type': 'application/json',
    });
    const bytes = {
      key: Buffer.from(message.key),
      value: Buffer.from(message.value),
      headers: { kind: Buffer.from('revocation'), 'schema-version': Buffer.from('1') },
    };
    expect(decodeMessage(bytes)).toEqual({ kind: 'revocation', key: 'alice', event: oneSession });
    expect(partitionKey(allSessions)).toBe('alice');
  });

  it('round-trips heartbeats (version 2, with the partition count), addressed to a partition', () => {
    const beat = { publisher_id: 'p1', sent_at: AT, interval_ms: 1000, partitions: 12 };
    const message = encodeHeartbeat(beat, 7);
    expect(message.partition).toBe(7);
    expect(message.headers['schema-version']).toBe('2');
    expect(decodeMessage(message)).toEqual({ kind: 'heartbeat', heartbeat: beat });
  });

  it('still reads version 1 heartbeats (publishers not yet upgraded), not version 1 with new fields', () => {
    const v1 = { publisher_id: 'p1', sent_at: AT, interval_ms: 1000 };
    const headers = { kind: 'heartbeat', 'schema-version': '1' };
    expect(decodeMessage({ value: JSON.stringify(v1), headers })).toEqual({
      kind: 'heartbeat',
      heartbeat: v1,
    });
    expect(() =>
      decodeMessage({ value: JSON.stringify({ ...v1, partitions: 3 }), headers }),
    ).toThrow(InvalidMessageError);
    expect(() =>
      decodeMessage({ value: JSON.stringify(v1), headers: { ...headers, 'schema-version': '3' } }),
    ).toThrow(/schema version 3 of heartbeat/);
  });

  it('refuses to encode an invalid event', () => {
    expect(() => encodeRevocation({ ...oneSession, iat: -1 })).toThrow();
  });

  const valid = encodeRevocation(oneSession);
  it.each([
    ['no kind header', { ...valid, headers: { 'schema-version': '1' } }, /unknown message kind/],
    [
      'an unknown kind',
      { ...valid, headers: { ...valid.headers, kind: 'surprise' } },
      /unknown message kind surprise/,
    ],
    [
      'another schema version',
      { ...valid, headers: { ...valid.headers, 'schema-version': '2' } },
      /schema version 2/,
    ],
    ['a value that is not JSON', { ...valid, value: '{nope' }, /not JSON/],
    ['an empty value', { ...valid, value: null }, /empty value/],
    [
      'a missing subject',
      { ...valid, value: valid.value.replace('"subject"', '"subjekt"') },
      /subject/,
    ],
    [
      'an unexpected field',
      { ...valid, value: JSON.stringify({ ...oneSession, extra: 1 }) },
      /Unrecognized key/,
    ],
    ['a key other than the user id', { ...valid, key: 'bob' }, /key is not the subject user id/],
    [
      'a bad initiating entity',
      {
        ...valid,
        value: valid.value
          .replace('"user_logout"', '"x"')
          .replace('"initiating_entity":"user"', '"initiating_entity":"robot"'),
      },
      /initiating_entity/,
    ],
  ])('rejects %s with a reason', (_, message, reason) => {
    expect(() => decodeMessage(message)).toThrow(InvalidMessageError);
    expect(() => decodeMessage(message)).toThrow(reason);
  });
});
