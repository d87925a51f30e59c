import { join } from 'node:path';
import { uniqueName } from '@app/testing';
import { Redis } from 'ioredis';
import { freePort } from '../../../scripts/lib/process.ts';
import { startRedis, type RedisHandle } from '../../../scripts/redis/redis.ts';
import { client, startSessionApp, type SessionApp } from './session-app';

// With REDIS_DURABILITY=replicas, a session end is acknowledged only once a replica has it:
// a failover to that replica (the primary killed outright) loses no acknowledged logout.
// While the replica is cut off, logouts answer 503 instead of a 204 that could be lost.

describe('REDIS_DURABILITY=replicas across a failover (a primary and a replica of its own)', () => {
  let primary: RedisHandle;
  let replica: RedisHandle;
  let app: SessionApp;
  let call: ReturnType<typeof client>;
  const dataDir = join(process.env.TEST_DATA_DIR ?? '/tmp', uniqueName('failover'));

  beforeAll(async () => {
    primary = await startRedis({ dataDir: join(dataDir, 'primary'), appendfsync: 'everysec' });
    replica = await startRedis({
      dataDir: join(dataDir, 'replica'),
      appendfsync: 'everysec',
      args: ['--replicaof', '127.0.0.1', String(primary.port)],
    });
    const probe = new Redis(replica.url);
    for (
      let i = 0;
      i < 100 && !/master_link_status:up/.test(await probe.info('replication'));
      i += 1
    )
      await new Promise((resolve) => setTimeout(resolve, 100));
    probe.disconnect();
    app = await startSessionApp({
      REDIS_URL: primary.url,
      REDIS_DURABILITY: 'replicas',
      REDIS_DURABILITY_REPLICAS: '1',
      REDIS_DURABILITY_TIMEOUT_MS: '300',
      DEFAULT_MAX_DEVICES: '50',
    });
    call = client(app);
  });

  afterAll(async () => {
    await app.close().catch(() => undefined);
    await Promise.all([primary.stop(), replica.stop()]);
  });

  it('every logout acknowledged with 204 is on the promoted replica', async () => {
    const sessions: { id: string; token: string }[] = [];
    for (let i = 0; i < 12; i += 1) {
      const login = await call('POST', '/auth/login', {
        body: { username: 'alice', password: 'alice-pass', device: { name: `device-${i}` } },
      });
      expect(login.status).toBe(200);
      sessions.push({ id: String(login.body.session_id), token: String(login.body.access_token) });
    }
    const logout = async (session: (typeof sessions)[number]) => ({
      session,
      status: (await call('POST', '/auth/logout', { token: session.token })).status,
    });

    const whileReplicating = [];
    for (const session of sessions.slice(0, 6)) whileReplicating.push(await logout(session));
    expect(whileReplicating.map((r) => r.status)).toEqual(Array(6).fill(204));

    // A partition: the replica loses its primary (it follows an address where nobody answers)
    // and keeps what it had. Nothing written now reaches it.
    const promoted = new Redis(replica.url);
    await promoted.replicaof('127.0.0.1', String(await freePort()));
    const whileCutOff = [];
    for (const session of sessions.slice(6)) whileCutOff.push(await logout(session));

    // Failover: the primary dies, the replica is promoted.
    await primary.kill();
    try {
      await promoted.replicaof('NO', 'ONE');
      const streams = await promoted.keys(`${app.prefix}{o*}:outbox`);
      const ended = new Set<string>();
      for (const stream of streams)
        for (const [, fields] of await promoted.xrange(stream, '-', '+')) {
          const event = fields[fields.indexOf('event') + 1] ?? '{}';
          const match = /"session":\{[^}]*"id":"([^"]+)"/.exec(event);
          if (match?.[1]) ended.add(match[1]);
        }
      for (const { session, status } of [...whileReplicating, ...whileCutOff])
        if (status === 204)
          expect({ session: session.id, onReplica: ended.has(session.id) }).toEqual({
            session: session.id,
            onReplica: true,
          });
    } finally {
      promoted.disconnect();
    }
    // Not by luck: what the cut-off replica could not have was never acknowledged.
    expect(whileCutOff.map((r) => r.status)).toEqual(Array(6).fill(503));
  });
});
