import { ConfigService } from '@nestjs/config';
import { revocationEvent } from '@app/contracts';
import fc from 'fast-check';
import { endAllSessions } from '../src/sessions/redis/session-commands';
import { SessionKeys } from '../src/sessions/redis/session-keys';
import { client, outbox, startSessionApp, type SessionApp } from './session-app';

// Every identifier the session service accepts makes a valid revocation event; any other is
// refused with a clear 400. A session end whose event cannot be built fails loudly, with
// nothing done, never a 204 whose event the publisher would have to dead-letter.

const LONG_ID = `u${'x'.repeat(199)}`; // 200 characters: the longest user id a record may have

describe('identifiers and revocation events (real Redis)', () => {
  let app: SessionApp;
  let call: ReturnType<typeof client>;
  let admin: string;

  beforeAll(async () => {
    app = await startSessionApp({
      // A user whose id is as long as the user-record schema allows.
      USERS: JSON.stringify([
        {
          id: LONG_ID,
          username: 'long',
          password_hash: await hashFor('long-pass'),
          roles: ['user'],
        },
      ]),
    });
    call = client(app);
    const login = await call('POST', '/auth/login', {
      body: { username: 'admin', password: 'admin-pass', device: { name: 'console' } },
    });
    admin = String(login.body.access_token);
  });

  afterAll(async () => {
    await app.close();
  });

  /** The events written for `userId` validate against the contract, keyed by that user. */
  async function eventsOf(userId: string) {
    const records = (await outbox(app)).filter((r) => r.key === userId);
    for (const record of records) {
      expect(revocationEvent.safeParse(record.event).success).toBe(true);
      expect(Object.values(record.event.events)[0]?.subject.user.id).toBe(userId);
    }
    return records;
  }

  it('a 200-character user id: logout, logout-all and an admin logout-all all make valid events', async () => {
    const login = () =>
      call('POST', '/auth/login', {
        body: { username: 'long', password: 'long-pass', device: { name: 'phone' } },
      });
    const first = await login();
    expect(first.status).toBe(200);
    expect(
      (await call('POST', '/auth/logout', { token: String(first.body.access_token) })).status,
    ).toBe(204);
    const second = await login();
    expect(
      (await call('POST', '/auth/logout-all', { token: String(second.body.access_token) })).status,
    ).toBe(204);
    expect(
      (await call('POST', `/admin/users/${LONG_ID}/logout-all`, { token: admin })).status,
    ).toBe(204);
    expect(await eventsOf(LONG_ID)).toHaveLength(3);
  });

  it('property: any user id in an admin route is either refused with 400 or makes a valid event', async () => {
    await fc.assert(
      fc.asyncProperty(
        // "." and ".." are no path segment of a URL: the client resolves them away (RFC 3986
        // 5.2.4) and the route is never reached (404). The service refuses dot-only ids anyway.
        fc
          .oneof(
            fc.string({ minLength: 1, maxLength: 300 }),
            fc.string({ unit: 'grapheme', minLength: 1, maxLength: 260 }),
            fc.stringMatching(/^[\w.@-]{100,260}$/),
          )
          .filter((id) => id !== '.' && id !== '..'),
        async (userId) => {
          const answer = await call(
            'POST',
            `/admin/users/${encodeURIComponent(userId)}/logout-all`,
            {
              token: admin,
            },
          );
          if (answer.status === 400) {
            expect(answer.body.error).toBe('invalid_request');
            return;
          }
          expect(answer.status).toBe(204);
          expect((await eventsOf(userId)).length).toBeGreaterThan(0);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('a session end whose event cannot be built fails, and changes nothing', async () => {
    const config = app.app.get(ConfigService);
    const keys = new SessionKeys({
      prefix: config.getOrThrow<string>('REDIS_KEY_PREFIX'),
      shards: config.getOrThrow<number>('OUTBOX_SHARDS'),
    });
    const userId = 'y'.repeat(300); // longer than the contract's 256
    const shard = keys.shardOf(userId);
    const before = await app.redis.xlen(keys.outbox(shard));
    await expect(
      endAllSessions.run(
        app.redis,
        [
          keys.userSessions(userId),
          keys.revokedBefore(userId),
          keys.expiries(shard),
          keys.outbox(shard),
        ],
        {
          base: keys.base(shard),
          issuer: 'http://127.0.0.1:3000',
          nonce: 'n0nce',
          now: app.clock.now(),
          user: userId,
          entity: 'admin',
          reason: 'admin',
          retention_ms: 306_000,
        },
      ),
    ).rejects.toThrow(/user id/);
    expect(await app.redis.xlen(keys.outbox(shard))).toBe(before);
    expect(await app.redis.exists(keys.revokedBefore(userId))).toBe(0);
  });
});

async function hashFor(password: string): Promise<string> {
  const { PasswordHasher } = await import('../src/identity/password-hasher.js');
  return new PasswordHasher().hash(password);
}
