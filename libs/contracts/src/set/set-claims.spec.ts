import { buildRevocationEvent } from '../build-event';
import { SESSION_REVOKED } from '../session-revoked.event';
import {
  buildSessionRevokedSet,
  buildVerificationSet,
  sessionRevokedSet,
  verificationSet,
} from './set-claims';
import { SSF_VERIFICATION } from './uris';

const envelope = { issuer: 'https://ssf.example', audience: 'https://rp.example', jti: 'set-1' };

describe('buildSessionRevokedSet', () => {
  it('moves the subject to sub_id and keeps the CAEP claims of one ended session', () => {
    const event = buildRevocationEvent(
      {
        issuer: 'https://sessions.example',
        userId: 'u-1',
        sessionId: 's-1',
        initiatingEntity: 'admin',
        reason: 'admin_revoke',
        at: 1_700_000_000_123,
      },
      'event-1',
    );
    expect(buildSessionRevokedSet(event, { ...envelope, iat: 1_700_000_001 })).toEqual({
      iss: 'https://ssf.example',
      aud: 'https://rp.example',
      iat: 1_700_000_001,
      jti: 'set-1',
      txn: 'event-1',
      sub_id: {
        format: 'complex',
        user: { format: 'opaque', id: 'u-1' },
        session: { format: 'opaque', id: 's-1' },
      },
      events: {
        [SESSION_REVOKED]: {
          event_timestamp: 1_700_000_000.123,
          initiating_entity: 'admin',
          reason_admin: { en: 'admin_revoke' },
        },
      },
    });
  });

  it('gives a logout everywhere a user-wide subject (no session)', () => {
    const event = buildRevocationEvent({
      issuer: 'https://sessions.example',
      userId: 'u-2',
      initiatingEntity: 'user',
      reason: 'logout_all',
      at: 1_700_000_000_000,
    });
    const set = buildSessionRevokedSet(event, envelope);
    expect(set.sub_id).toEqual({ format: 'complex', user: { format: 'opaque', id: 'u-2' } });
    expect(set.iat).toBeGreaterThan(1_700_000_000);
  });

  it('refuses claims the schema does not allow', () => {
    const event = buildRevocationEvent({
      issuer: 'https://sessions.example',
      userId: 'u-3',
      initiatingEntity: 'user',
      reason: 'logout',
      at: 1,
    });
    const set = buildSessionRevokedSet(event, envelope);
    expect(sessionRevokedSet.safeParse({ ...set, sub: 'u-3' }).success).toBe(false);
    expect(sessionRevokedSet.safeParse({ ...set, aud: '' }).success).toBe(false);
    expect(() => buildSessionRevokedSet(event, { ...envelope, jti: '' })).toThrow();
  });
});

describe('buildVerificationSet', () => {
  it('names the stream as an opaque subject and echoes state', () => {
    const set = buildVerificationSet('stream-1', 'abc', { ...envelope, iat: 5 });
    expect(set).toEqual({
      iss: 'https://ssf.example',
      aud: 'https://rp.example',
      iat: 5,
      jti: 'set-1',
      sub_id: { format: 'opaque', id: 'stream-1' },
      events: { [SSF_VERIFICATION]: { state: 'abc' } },
    });
    expect(buildVerificationSet('stream-1', undefined, envelope).events).toEqual({
      [SSF_VERIFICATION]: {},
    });
    expect(verificationSet.safeParse({ ...set, txn: 'x' }).success).toBe(false);
  });
});
