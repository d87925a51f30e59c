import { buildRevocationEvent, RevocationStore, SESSION_REVOKED } from '@app/contracts';
import type { AppliedRevocation, RevocationListener } from '@app/revocation-guard';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { ClientStream, EventStreams, revocationNotice } from './events';
import type { CookieSession } from './token-store';

// The event streams of GET /bff/events without HTTP: the bounded backlog of a client that
// stops reading (the integration spec cannot make a socket stop taking bytes at a chosen
// event), and the fan-out of applied revocations, ended by the admin's own revocation.

const frame = (n: number) => `id: ${n}\ndata: ${'x'.repeat(90)}\n\n`;
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

/** Everything the stream gives, as text, read as it comes. */
function reader(body: Readable): { text: () => string } {
  let text = '';
  body.setEncoding('utf8');
  body.on('data', (chunk: string) => {
    text += chunk;
  });
  return { text: () => text };
}

describe('ClientStream (one client, bounded backlog)', () => {
  it('closes the stream of a client that stops reading once more than `limit` events wait', () => {
    let overflows = 0;
    // 64-byte buffer: the first 100-byte frame fills it; then the backlog takes three.
    const stream = new ClientStream(3, () => (overflows += 1), 64);
    expect([1, 2, 3, 4].map((n) => stream.send(frame(n)))).toEqual([true, true, true, true]);
    expect(stream.body.destroyed).toBe(false);
    expect(overflows).toBe(0);
    expect(stream.send(frame(5))).toBe(false);
    expect(overflows).toBe(1);
    expect(stream.body.destroyed).toBe(true);
    expect(stream.send(frame(6))).toBe(false);
    expect(overflows).toBe(1);
  });

  it('gives a client that reads every event in order, however many go through', async () => {
    let overflows = 0;
    const stream = new ClientStream(3, () => (overflows += 1), 64);
    const client = reader(stream.body);
    for (let n = 1; n <= 200; n += 1) {
      // Bursts of four: past the buffer, within the backlog.
      stream.send(frame(n));
      if (n % 4 === 0) await nextTurn();
    }
    stream.end('event: end\ndata: {}\n\n');
    await once(stream.body, 'end');
    expect(overflows).toBe(0);
    const ids = [...client.text().matchAll(/^id: (\d+)$/gm)].map((match) => Number(match[1]));
    expect(ids).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect(client.text().endsWith('event: end\ndata: {}\n\n')).toBe(true);
  });

  it('sends keep-alive comments only to a client that reads', () => {
    const stream = new ClientStream(3, () => undefined, 64);
    stream.send(frame(1)); // fills the buffer
    stream.comment('keep-alive');
    expect(stream.body.readableLength).toBe(frame(1).length);
  });
});

describe('EventStreams (fan-out of applied revocations)', () => {
  const NOW = Date.now();
  const admin: CookieSession = {
    access_token: 'a',
    refresh_token: 'r',
    session_id: 'admin-session',
    sub: 'admin',
    roles: ['user', 'admin'],
    iat: Math.floor(NOW / 1000) - 10,
    exp: Math.floor(NOW / 1000) + 300,
    csrf_token: 'c',
    expires_at: NOW + 3600_000,
  };
  let store: RevocationStore;
  let listeners: RevocationListener[];
  let subscribers: number;
  let streams: EventStreams;

  const applied = (userId: string, sessionId?: string): AppliedRevocation => {
    const event = buildRevocationEvent({
      issuer: 'https://issuer.test',
      userId,
      ...(sessionId !== undefined && { sessionId }),
      initiatingEntity: 'admin',
      reason: 'admin_revoked',
      at: Date.now() - 5,
    });
    const changed = store.apply(event);
    return { event, revoked: event.events[SESSION_REVOKED], appliedAt: Date.now(), changed };
  };
  const emit = (revocation: AppliedRevocation) => {
    for (const listener of [...listeners]) listener(revocation);
  };

  beforeEach(() => {
    store = new RevocationStore({ retentionMs: 600_000 });
    listeners = [];
    subscribers = 0;
    streams = new EventStreams(
      {
        store,
        onRevocation: (listener) => {
          listeners.push(listener);
          return () => listeners.splice(listeners.indexOf(listener), 1);
        },
      },
      {
        keepAliveMs: 60_000,
        bufferSize: 10,
        subscribers: { inc: () => (subscribers += 1), dec: () => (subscribers -= 1) },
      },
    );
  });

  it('sends each revocation to every stream with a growing id, and ends a stream with its own session', async () => {
    const mine = reader(streams.open(admin));
    const other = streams.open({ ...admin, session_id: 'other-admin-session' });
    const theirs = reader(other);
    expect(subscribers).toBe(2);
    expect(listeners).toHaveLength(1);

    const alice = applied('alice', 's1');
    emit(alice);
    emit(applied('bob'));
    await nextTurn();
    const events = (text: string) =>
      [...text.matchAll(/^id: (\w+)-(\d+)\nevent: revocation\ndata: (.*)$/gm)].map((match) => ({
        seq: Number(match[2]),
        data: JSON.parse(match[3] ?? '') as unknown,
      }));
    expect(events(mine.text())).toEqual([
      { seq: 1, data: revocationNotice(alice) },
      { seq: 2, data: expect.objectContaining({ user_id: 'bob', reason: 'admin_revoked' }) },
    ]);
    expect(events(theirs.text())).toEqual(events(mine.text()));
    expect(mine.text().startsWith('retry: 3000\n')).toBe(true);

    // The other admin's session is revoked: its stream gets that event, then its end.
    emit(applied('admin', 'other-admin-session'));
    await once(other, 'end');
    expect(theirs.text().endsWith('event: end\ndata: {"reason":"session_ended"}\n\n')).toBe(true);
    expect(events(theirs.text()).map((event) => event.seq)).toEqual([1, 2, 3]);
    expect(subscribers).toBe(1);

    streams.closeAll();
    await nextTurn();
    expect(mine.text().endsWith('event: end\ndata: {"reason":"shutdown"}\n\n')).toBe(true);
    expect(subscribers).toBe(0);
    expect(listeners).toHaveLength(0);
  });

  it('describes a revocation with the contract fields, when it was applied and how late', () => {
    const notice = revocationNotice({
      event: {
        jti: 'j1',
        iss: 'i',
        iat: 1_800_000_000,
        events: {
          [SESSION_REVOKED]: {
            subject: { format: 'complex', user: { format: 'opaque', id: 'u1' } },
            event_timestamp: 1_800_000_000.123,
            initiating_entity: 'user',
          },
        },
      },
      revoked: {
        subject: { format: 'complex', user: { format: 'opaque', id: 'u1' } },
        event_timestamp: 1_800_000_000.123,
        initiating_entity: 'user',
      },
      appliedAt: 1_800_000_000_456,
      changed: true,
    });
    expect(notice).toEqual({
      jti: 'j1',
      user_id: 'u1',
      initiating_entity: 'user',
      reason: null,
      at: '2027-01-15T08:00:00.123Z',
      applied_at: '2027-01-15T08:00:00.456Z',
      delay_ms: 333,
      changed: true,
    });
  });
});
