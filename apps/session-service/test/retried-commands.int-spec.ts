import { ConfigService } from '@nestjs/config';
import {
  createSession,
  endProviderSessions,
  rotateRefresh,
} from '../src/sessions/redis/session-commands';
import { refreshToken, SessionKeys } from '../src/sessions/redis/session-keys';
import { hashToken } from '../src/sessions/redis/redis-session.repository';
import { client, outbox, startSessionApp, type SessionApp } from './session-app';

// Redis may run a command whose reply never reaches the client; a client that sends it again
// runs it twice. The session commands must leave the same state and events either way.

describe('session commands run twice with the same argument (real Redis)', () => {
  let app: SessionApp;
  let keys: SessionKeys;
  const ctx = (shard: number) => ({
    base: keys.base(shard),
    issuer: 'http://127.0.0.1:3000',
    nonce: 'n0nce',
    now: app.clock.now(),
  });

  beforeAll(async () => {
    app = await startSessionApp();
    const config = app.app.get(ConfigService);
    keys = new SessionKeys({
      prefix: config.getOrThrow<string>('REDIS_KEY_PREFIX'),
      shards: config.getOrThrow<number>('OUTBOX_SHARDS'),
    });
  });

  afterAll(async () => {
    await app.close();
  });

  it('a sign-in run twice evicts nobody the second time', async () => {
    const call = client(app);
    const admin = await call('POST', '/auth/login', {
      body: { username: 'admin', password: 'admin-pass', device: { name: 'console' } },
    });
    await call('PUT', '/admin/users/bob/plan', {
      body: { max_devices: 2, policy: 'evict_oldest' },
      token: String(admin.body.access_token),
    });
    const older = await call('POST', '/auth/login', {
      body: { username: 'bob', password: 'bob-pass', device: { name: 'old phone' } },
    });
    expect(older.status).toBe(200);
    const shard = keys.shardOf('bob');
    const sid = `s${shard}_retried-session-id-00`;
    const run = () =>
      createSession.run(
        app.redis,
        [
          keys.userSessions('bob'),
          keys.plan('bob'),
          keys.revokedBefore('bob'),
          keys.expiries(shard),
          keys.outbox(shard),
          keys.session(shard, sid),
          keys.refreshFamily(shard, hashToken('retried-family')),
          keys.idTokenUse('bob', 'none'),
          keys.providerSessionEnded('bob', 'none'),
        ],
        {
          ...ctx(shard),
          user: 'bob',
          sid,
          family: hashToken('retried-family'),
          secret: hashToken('retried-secret'),
          default_max: 5,
          default_policy: 'evict_oldest',
          idle_ms: 60_000,
          absolute_at: app.clock.now() + 3_600_000,
          remember: '0',
          roles: '["user"]',
          device_name: 'new phone',
          device_platform: '',
          user_agent: '',
          ip: '',
          format: 'jwt',
        },
      );
    expect(await run()).toMatchObject({ kind: 'created', evicted: 0 });
    expect(await run()).toMatchObject({ kind: 'created', evicted: 0 });
    expect((await app.redis.zrange(keys.userSessions('bob'), '0', '-1')).sort()).toEqual(
      [String(older.body.session_id), sid].sort(),
    );
    expect((await outbox(app)).filter((r) => r.key === 'bob')).toEqual([]);
  });

  it('a refresh run twice answers the same rotation and is no reuse, even after the grace window', async () => {
    const call = client(app);
    const { body } = await call('POST', '/auth/login', {
      body: { username: 'alice', password: 'alice-pass', device: { name: 'phone' } },
    });
    const { shard, family, secret } = keys.parseRefreshToken(String(body.refresh_token))!;
    const next = 'N'.repeat(43);
    const run = () =>
      rotateRefresh.run(
        app.redis,
        [keys.refreshFamily(shard, hashToken(family)), keys.expiries(shard), keys.outbox(shard)],
        { ...ctx(shard), secret: hashToken(secret), next: hashToken(next), grace_ms: 5_000 },
      );
    const first = await run();
    app.clock.advance(10_000); // the retry arrives after the grace window
    expect(await run()).toEqual(first);
    expect(first).toMatchObject({ kind: 'rotated', sid: body.session_id });
    expect((await outbox(app)).filter((r) => r.sessionId === body.session_id)).toEqual([]);
    const refreshed = await call('POST', '/auth/refresh', {
      body: { refresh_token: refreshToken(shard, family, next) },
    });
    expect(refreshed.status).toBe(200);
  });

  it('a back-channel logout run twice ends the provider session’s sessions with one event each', async () => {
    const user = 'oidc-retried-user';
    const shard = keys.shardOf(user);
    const sids = [`s${shard}_retried-idp-session-01`, `s${shard}_retried-idp-session-02`];
    for (const sid of sids) {
      await app.redis.hset(keys.session(shard, sid), {
        user,
        family: hashToken(`family-${sid}`),
        idp_iss: 'https://idp.example',
        idp_sub: 'sub-1',
        idp_sid: 'idp-sid-1',
      });
      await app.redis.zadd(keys.userSessions(user), app.clock.now(), sid);
    }
    const run = () =>
      endProviderSessions.run(
        app.redis,
        [
          keys.userSessions(user),
          keys.expiries(shard),
          keys.outbox(shard),
          keys.providerSessionEnded(user, 'idp-sid-1-hash'),
        ],
        {
          ...ctx(shard),
          user,
          idp_iss: 'https://idp.example',
          idp_sid: 'idp-sid-1',
          entity: 'system',
          reason: 'signed out at the identity provider',
          marker_ms: 60_000,
        },
      );
    expect(await run()).toEqual({ ended: 2, events: 2 });
    expect(await run()).toEqual({ ended: 0, events: 0 });
    const events = (await outbox(app)).filter((r) => r.key === user);
    expect(events.map((r) => r.sessionId).sort()).toEqual([...sids].sort());
  });
});
