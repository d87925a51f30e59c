import { setTimeout as sleep } from 'node:timers/promises';
import { shardTag } from '@app/contracts';
import {
  call,
  eventually,
  startOidcIssuer,
  StopWaiting,
  type Reply,
  type TestOidcIssuer,
} from '@app/testing';
import { Cluster, Redis } from 'ioredis';
import { exportJWK, generateKeyPair } from 'jose';
import { ConfigResourceTypes, Kafka, logLevel } from 'kafkajs';
import type { RedisClusterNode } from '../../scripts/redis/redis.ts';
import type { AppHandle } from '../../scripts/system.ts';
import { RevocationSystem, toSession, type Session } from './revocation-system';

// Issue 15, the apps on the cluster topology end to end: every app a separate process from
// dist/ (the session service, the publisher, two instances of each API service, a gateway) on
// three Kafka nodes (replication factor 3, min ISR 2) and a Redis Cluster of three primaries
// and three replicas (REDIS_CLUSTER_NODES), started by `startSystem({ topology: 'cluster' })`.
// The core revocation scenarios of revocation.e2e-spec, each enforced at all four API
// instances, and the gateway's cookie session; last, a Redis primary SIGKILLed under sign-ins
// and logouts (it leaves the cluster changed, so it runs after the others). Waits are bounded
// polls, never timings.
//
// Two clusters start in 60-90 s on 2 cores: SKIP_CLUSTER_TESTS=1 leaves this file out of a
// quick local run, as it does the other cluster specs; CI runs it.

const describeCluster = process.env.SKIP_CLUSTER_TESTS === '1' ? describe.skip : describe;

const PASSWORDS: Record<string, string> = {
  alice: 'alice-pass',
  bob: 'bob-pass',
  admin: 'admin-pass',
};

/** Figures for the reader of the run (not assertions). */
const report = (line: string) => process.stderr.write(`[cluster] ${line}\n`);

describeCluster('session revocation on the cluster topology (Kafka ×3, Redis Cluster 3+3)', () => {
  let system: RevocationSystem;
  let issuer: TestOidcIssuer;
  let admin: Session;
  const subs: Record<string, string> = {};

  const signIn = (username: string, device: string) =>
    system.signIn(username, PASSWORDS[username]!, `${username}-${device}`);
  const status = async (session: Session, method: string, path: string, body?: unknown) =>
    (await system.as(session, method, path, body)).status;
  const setPlan = (user: string, maxDevices: number, policy: 'evict_oldest' | 'reject') =>
    status(admin, 'PUT', `/admin/users/${subs[user]!}/plan`, { max_devices: maxDevices, policy });

  beforeAll(async () => {
    // Users of an OpenID provider sign in without password hashing (the failover's stream of
    // sign-ins); one signing key for every session-service instance, so the APIs verify the
    // tokens of a second instance too.
    issuer = await startOidcIssuer();
    const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    const signingKey = { ...(await exportJWK(privateKey)), kid: 'cluster-e2e', alg: 'EdDSA' };
    system = new RevocationSystem({
      topology: 'cluster',
      gateway: true,
      env: {
        'session-service': {
          RATE_LIMIT_FAILS_PER_USERNAME: '10000',
          RATE_LIMIT_PER_IP: '10000',
          REFRESH_REUSE_GRACE_SECONDS: '0',
          DEFAULT_MAX_DEVICES: '100',
          // Every session end waits until a replica has it: WAIT on the primary that took it.
          REDIS_DURABILITY: 'replicas',
          REDIS_DURABILITY_REPLICAS: '1',
          SIGNING_KEYS: JSON.stringify([signingKey]),
          OIDC_ISSUERS: JSON.stringify([
            { issuer: issuer.issuer, jwks_uri: issuer.jwksUri, audience: issuer.audience },
          ]),
        },
        // No TOPIC_REPLICATION_FACTOR nor TOPIC_MIN_INSYNC_REPLICAS: the cluster's own (3, 2).
        'revocation-publisher': { HEARTBEAT_INTERVAL_MS: '200', PUBLISH_RETRY_MAX_MS: '1000' },
      },
    });
    await system.start();
    const [adminSession, alice, bob] = await Promise.all(
      ['admin', 'alice', 'bob'].map((username) => signIn(username, 'setup')),
    );
    admin = adminSession!;
    subs.alice = alice!.sub;
    subs.bob = bob!.sub;
  });

  afterAll(async () => {
    await (system as RevocationSystem | undefined)?.stop();
    await (issuer as TestOidcIssuer | undefined)?.stop();
  });

  beforeEach(async () => {
    const { reply, session } = await system.refresh(admin.refreshToken, 'admin');
    if (!session) throw new Error(`admin refresh answered ${reply.status}`);
    admin = session;
    for (const user of ['alice', 'bob']) {
      expect(await status(admin, 'POST', `/admin/users/${subs[user]!}/logout-all`)).toBe(204);
      expect(await setPlan(user, 100, 'evict_oldest')).toBe(200);
    }
  });

  it('runs on the clusters: the revocation topic has 3 replicas and min ISR 2, sessions live on several Redis primaries', async () => {
    const kafka = new Kafka({
      clientId: 'cluster-e2e',
      brokers: system.brokers.split(','),
      logLevel: logLevel.NOTHING,
    });
    const kafkaAdmin = kafka.admin();
    await kafkaAdmin.connect();
    try {
      const { topics } = await kafkaAdmin.fetchTopicMetadata({ topics: [system.topic] });
      const partitions = topics[0]?.partitions ?? [];
      expect(partitions.length).toBeGreaterThan(0);
      expect(partitions.map((p) => p.replicas.length)).toEqual(partitions.map(() => 3));
      const { resources } = await kafkaAdmin.describeConfigs({
        resources: [
          {
            type: ConfigResourceTypes.TOPIC,
            name: system.topic,
            configNames: ['min.insync.replicas'],
          },
        ],
        includeSynonyms: false,
      });
      expect(resources[0]?.configEntries[0]?.configValue).toBe('2');
    } finally {
      await kafkaAdmin.disconnect();
    }

    // Users hash to outbox shards, and shards to slots spread over the primaries: sign in
    // enough of them that each primary holds some session keys.
    await Promise.all(['alice', 'bob', 'admin'].map((user) => signIn(user, 'spread')));
    const redis = clusterClient(system.redisCluster.nodes);
    try {
      await eventually('the cluster client to be ready', () =>
        redis.status === 'ready' ? true : undefined,
      );
      const sizes = await Promise.all(redis.nodes('master').map((node) => node.dbsize()));
      expect(sizes).toHaveLength(3);
      expect(sizes.filter((size) => size > 0).length).toBeGreaterThanOrEqual(2);
    } finally {
      redis.disconnect();
    }
  });

  it('paywall evict_oldest: the laptop signing in ends the phone everywhere', async () => {
    expect(await setPlan('alice', 1, 'evict_oldest')).toBe(200);
    const phone = await signIn('alice', 'phone');
    await system.expectEverywhere('accepted', [phone]);
    const laptop = await signIn('alice', 'laptop');
    await system.expectEverywhere('rejected', [phone]);
    await system.expectEverywhere('accepted', [laptop]);
  });

  it('paywall reject: the second device gets 409, and signs in once the first logs out', async () => {
    expect(await setPlan('alice', 1, 'reject')).toBe(200);
    const phone = await signIn('alice', 'phone');
    const refused = await system.login('alice', 'alice-pass', 'alice-laptop');
    expect(refused.reply.status).toBe(409);
    expect(refused.reply.body).toEqual(
      expect.objectContaining({
        error: 'device_limit_reached',
        sessions: [expect.objectContaining({ session_id: phone.sessionId })],
      }),
    );
    await system.expectEverywhere('accepted', [phone]);
    expect(await status(phone, 'POST', '/auth/logout')).toBe(204);
    await system.expectEverywhere('rejected', [phone]);
    const laptop = await signIn('alice', 'laptop');
    await system.expectEverywhere('accepted', [laptop]);
  });

  it('logging out one device ends only it; "log out everywhere" ends the rest, not a sign-in right after it', async () => {
    const [phone, laptop, tablet] = (await Promise.all(
      ['phone', 'laptop', 'tablet'].map((device) => signIn('alice', device)),
    )) as [Session, Session, Session];
    await system.expectEverywhere('accepted', [phone, laptop, tablet]);
    expect(await status(phone, 'POST', '/auth/logout')).toBe(204);
    await system.expectEverywhere('rejected', [phone]);
    await system.expectEverywhere('accepted', [laptop, tablet]);
    expect(await status(laptop, 'POST', '/auth/logout-all')).toBe(204);
    const fresh = await signIn('alice', 'new-phone');
    await system.expectEverywhere('rejected', [laptop, tablet]);
    await system.expectEverywhere('accepted', [fresh]);
  });

  it('an admin forces a logout: one session, then all of a user’s', async () => {
    const [bobPhone, bobLaptop, alicePhone] = await Promise.all([
      signIn('bob', 'phone'),
      signIn('bob', 'laptop'),
      signIn('alice', 'phone'),
    ]);
    await system.expectEverywhere('accepted', [bobPhone, bobLaptop, alicePhone]);
    expect(await status(bobPhone, 'POST', `/admin/users/${subs.alice!}/logout-all`)).toBe(403);
    expect(await status(admin, 'DELETE', `/admin/sessions/${bobPhone.sessionId}`)).toBe(204);
    await system.expectEverywhere('rejected', [bobPhone]);
    await system.expectEverywhere('accepted', [bobLaptop]);
    expect(await status(admin, 'POST', `/admin/users/${subs.bob!}/logout-all`)).toBe(204);
    await system.expectEverywhere('rejected', [bobLaptop]);
    await system.expectEverywhere('accepted', [alicePhone]);
  });

  it('a reused refresh token ends the session everywhere, the attacker’s tokens included', async () => {
    const victim = await signIn('alice', 'phone');
    const stolen = await system.refresh(victim.refreshToken, 'attacker');
    expect(stolen.reply.status).toBe(200);
    const attacker = stolen.session!;
    await system.expectEverywhere('accepted', [attacker]);
    const reuse = await system.refresh(victim.refreshToken, 'victim-again');
    expect({ status: reuse.reply.status, error: reuse.reply.body.error }).toEqual({
      status: 401,
      error: 'invalid_grant',
    });
    await system.expectEverywhere('rejected', [victim, attacker]);
    expect((await system.refresh(attacker.refreshToken, 'attacker-again')).reply.status).toBe(401);
  });

  it('the gateway: a cookie sign-in, a proxied call, and a logout that ends the session', async () => {
    const gateway = system.gateway.url;
    /** A browser's call from the console's page: its origin, the CSRF header, the cookie. */
    const fromPage = (method: string, path: string, cookie?: string, body?: unknown) =>
      fetch(`${gateway}${path}`, {
        method,
        headers: {
          'x-csrf': '1',
          origin: gateway,
          ...(cookie ? { cookie } : {}),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? null : JSON.stringify(body),
      });
    const login = await fromPage('POST', '/bff/login', undefined, {
      username: 'bob',
      password: 'bob-pass',
      device: { name: 'web' },
    });
    expect(login.status).toBe(200);
    const cookie = login.headers.getSetCookie()[0]?.split(';')[0] ?? '';
    expect(cookie).toMatch(/^__Host-session=./);

    const proxied = await fromPage('GET', '/api/content/me', cookie);
    expect(proxied.status).toBe(200);
    expect(((await proxied.json()) as { sub?: string }).sub).toBe(subs.bob);

    expect((await fromPage('POST', '/bff/logout', cookie)).status).toBe(204);
    expect((await fromPage('GET', '/api/content/me', cookie)).status).toBe(401);
  });
  // Last: it kills a Redis primary. Two session-service instances on the same Redis Cluster,
  // one waiting for a replica before it acknowledges a session end (REDIS_DURABILITY=replicas,
  // the spec's), one not (the default, `local`); users of an OpenID provider sign in and log
  // out through both while the primary holding most of their slots is SIGKILLed.
  it('a Redis primary SIGKILLed during sign-ins and logouts: 503 during the failover (no hang, no other 5xx), recovery by itself, no acknowledged end lost with REDIS_DURABILITY=replicas', async () => {
    // The second instance starts while the users sign in at the first.
    const starting = system.startSessionService('session-service-local', {
      REDIS_DURABILITY: 'local',
    });
    starting.catch(() => undefined); // awaited below
    const urls: Record<Mode, string> = { replicas: system.sessionServiceUrl, local: '' };
    const contentApis = system.apis.filter((api) => api.label.startsWith('content-api'));
    const members = system.redisCluster.members;

    // Where each outbox shard's slot lives (every key of a user carries its shard's tag).
    const slotOf = new Map<number, number>();
    const before = clusterClient(system.redisCluster.nodes);
    try {
      await eventually('the cluster client to be ready', () => before.status === 'ready');
      for (let shard = 0; shard < SHARDS; shard += 1)
        slotOf.set(shard, await before.cluster('KEYSLOT', shardTag(shard)));
    } finally {
      before.disconnect();
    }
    const ownerPortOf = async (shard: number) =>
      slotOwner(
        members.filter((m) => m.isAlive()),
        slotOf.get(shard) ?? -1,
      );

    // The users, and their shards (a session id names its shard: `s<shard>_…`).
    const shardOfUser = new Map<string, number>();
    await inBatches(USERS, 8, async (user) => {
      const session = toSession(user, await signInOidc(urls.replicas, issuer, user, 'warm-up'));
      shardOfUser.set(user, shardOfSession(session));
      expect((await logoutCall(urls.replicas, session)).status).toBe(204);
    });
    const local = await starting;
    urls.local = local.url;
    const portByShard = new Map<number, number>();
    for (const shard of new Set(shardOfUser.values()))
      portByShard.set(shard, await ownerPortOf(shard));
    const usersByPort = new Map<number, number>();
    for (const shard of shardOfUser.values()) {
      const port = portByShard.get(shard) ?? -1;
      usersByPort.set(port, (usersByPort.get(port) ?? 0) + 1);
    }
    const [victimPort, victimUsers] = [...usersByPort].sort(([a, x], [b, y]) => y - x || a - b)[0]!;
    const victim = members.find((m) => m.port === victimPort) as RedisClusterNode;
    const onVictim = (shard: number) => portByShard.get(shard) === victimPort;

    // The stream: WORKERS clients per instance, each signing a user in and out, again and
    // again; a 503 is retried (a new ID token for a sign-in, the same call for a logout).
    const answers: Answer[] = [];
    const rounds: Round[] = [];
    let stopping = false;
    const ask = async (mode: Mode, op: Answer['op'], shard: number, send: () => Promise<Reply>) => {
      const at = Date.now();
      let answer: Answer;
      try {
        const reply = await send();
        answer = { mode, op, shard, at, status: reply.status, reply };
      } catch (error) {
        // `call` gives up after 10 s: a hang, as a client sees one.
        answer = {
          mode,
          op,
          shard,
          at,
          status: `${(error as Error).name}: ${(error as Error).message}`,
        };
      }
      answers.push(answer);
      return answer;
    };
    const oneRound = async (mode: Mode, user: string, label: string): Promise<void> => {
      const shard = shardOfUser.get(user) ?? -1;
      const begun = Date.now();
      let session: Session | undefined;
      while (!session) {
        const answer = await ask(mode, 'sign-in', shard, async () =>
          signInOidc(urls[mode], issuer, user, label),
        );
        if (answer.status === 200 && answer.reply) session = toSession(label, answer.reply);
        else if (answer.status === 503 && Date.now() - begun < ROUND_GIVE_UP_MS)
          await sleep(RETRY_MS);
        else return;
      }
      let retried = false;
      for (;;) {
        const answer = await ask(mode, 'logout', shard, () => logoutCall(urls[mode], session));
        // A retried logout that finds its session ended: the first attempt's end took effect.
        if (answer.status === 204 || (answer.status === 401 && retried)) {
          rounds.push({ mode, shard, session, begun, ended: Date.now(), acknowledged: !retried });
          return;
        }
        if (answer.status !== 503 || Date.now() - begun >= ROUND_GIVE_UP_MS) return;
        retried = true;
        await sleep(RETRY_MS);
      }
    };
    let next = 0;
    const worker = async (mode: Mode, w: number) => {
      while (!stopping) {
        const i = next++;
        await oneRound(mode, USERS[i % USERS.length]!, `${mode}-${w}-${i}`);
      }
    };
    const stream = Promise.all(
      (['replicas', 'local'] as const).flatMap((mode) =>
        Array.from({ length: WORKERS }, (_, w) => worker(mode, w)),
      ),
    );
    /** Rounds done on the victim's shards by `mode` that began after `since`. */
    const doneOnVictim = (mode: Mode, since: number) =>
      rounds.filter(
        (r) => r.mode === mode && onVictim(r.shard) && r.begun > since && r.acknowledged,
      ).length;
    const unexpected = () =>
      answers.filter(
        (a) => !(a.op === 'sign-in' ? [200, 503] : [204, 401, 503]).includes(a.status as number),
      );
    const progress = (what: string, done: () => boolean) =>
      eventually(
        what,
        () => {
          const crash = system.crashed();
          if (crash) throw new StopWaiting(crash);
          const odd = unexpected();
          if (odd.length > 0)
            throw new StopWaiting(`unexpected answers: ${listAnswers(odd).join('; ')}`);
          return done();
        },
        { timeoutMs: 90_000, intervalMs: 50 },
      );

    let killedAt = 0;
    let promotedAt = 0;
    let rejoinedAt = 0;
    let newPrimary: number | undefined;
    try {
      // Both instances acknowledge ends on the victim's shards, then the primary dies.
      await progress('ends on the victim primary before the kill', () =>
        (['replicas', 'local'] as const).every((mode) => doneOnVictim(mode, 0) >= 10),
      );
      await victim.kill();
      killedAt = Date.now();

      // Its replica takes over its slots (cluster-node-timeout 2 s, then the election).
      newPrimary = await eventually(
        `a replica to take over the slots of ${victimPort}`,
        async () => {
          const port = await ownerPortOf([...portByShard].find(([, p]) => p === victimPort)![0]);
          return port !== victimPort ? port : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 100 },
      );
      promotedAt = Date.now();

      // The default instance serves the failed slots again by itself.
      await progress(
        'the default instance to end sessions on the failed slots again',
        () => doneOnVictim('local', promotedAt) >= 10,
      );

      // The promoted replica has no replica of its own: the replicas instance does not
      // acknowledge an end there (503, the end applied and retried to 401) until the killed
      // node is back, as its replica (the node's nodes.conf tells it it was failed over).
      await victim.restart();
      await eventually(
        `node ${victimPort} back as the replica of ${newPrimary}`,
        async () => (await replicationOf(victim)).includes('master_link_status:up'),
        { timeoutMs: 60_000, intervalMs: 200 },
      );
      rejoinedAt = Date.now();
      await progress(
        'the replicas instance to acknowledge ends on the failed slots again',
        () => doneOnVictim('replicas', rejoinedAt) >= 10,
      );
    } finally {
      stopping = true;
      await stream;
    }

    // Every answer was a success, a 503 (with Retry-After), or a retried logout's 401; no
    // other status, no client timeout.
    expect(listAnswers(unexpected())).toEqual([]);
    const unavailable = answers.filter((a) => a.status === 503);
    expect(unavailable.filter((a) => a.reply?.headers.get('retry-after') === null)).toEqual([]);
    expect(unavailable.length).toBeGreaterThan(0);
    const ends = (mode: Mode) => rounds.filter((r) => r.mode === mode);

    // After the failover: which ended sessions are live again (their refresh token works).
    const lost = new Map<Mode, Round[]>();
    for (const mode of ['replicas', 'local'] as const) {
      const again = await inBatches(ends(mode), 16, async (round) => {
        const reply = await call(urls.replicas, 'POST', '/auth/refresh', {
          body: { refresh_token: round.session.refreshToken },
        });
        if (reply.status !== 200 && reply.status !== 401)
          throw new Error(`refresh of ${round.session.label}: ${reply.status}`);
        return reply.status === 200;
      });
      lost.set(
        mode,
        ends(mode).filter((_, i) => again[i]),
      );
    }
    // With REDIS_DURABILITY=replicas none: each end, acknowledged or seen ended on a retry, is
    // refused by the session service and by the content API (its revocation event published).
    expect(lost.get('replicas')!.map((r) => r.session.label)).toEqual([]);
    const kept = [
      ...ends('replicas'),
      ...ends('local').filter((r) => !lost.get('local')!.includes(r)),
    ];
    await expectRejected(
      kept.map((r) => r.session),
      contentApis,
    );

    // The publisher still publishes: an end after it all, on the failed slots, is enforced.
    const lateUser = USERS.find((user) => onVictim(shardOfUser.get(user) ?? -1))!;
    const late = toSession('late', await signInOidc(urls.replicas, issuer, lateUser, 'late'));
    await system.expectEverywhere('accepted', [late]);
    expect((await logoutCall(urls.replicas, late)).status).toBe(204);
    await system.expectEverywhere('rejected', [late]);
    for (const app of [system.sessionService, local, system.publisher])
      await eventually(
        `${app.label} ready`,
        async () => (await fetch(`${app.url}/health/ready`)).ok,
      );
    expect(system.crashed()).toBeUndefined();

    const count = (mode: Mode, status: number) =>
      answers.filter((a) => a.mode === mode && a.status === status).length;
    const lostLocal = lost.get('local')!;
    report(
      `redis failover: primary :${victimPort} (slots of ${victimUsers} of ${USERS.length} users) SIGKILLed; replica :${newPrimary} took over ${promotedAt - killedAt} ms later; ` +
        `node back as its replica ${rejoinedAt - promotedAt} ms after that; ` +
        (['replicas', 'local'] as const)
          .map(
            (mode) =>
              `${mode}: ${ends(mode).filter((r) => r.acknowledged).length} ends acknowledged (204), ${ends(mode).filter((r) => !r.acknowledged).length} seen ended on a retry, ` +
              `${count(mode, 503)} answers 503, lost ${lost.get(mode)!.length}`,
          )
          .join('; ') +
        `; default mode's lost ends: ${lostLocal.length}${lostLocal.length > 0 ? ` (${lostLocal.map((r) => `${r.session.label} ended ${r.ended - killedAt} ms from the kill`).join(', ')})` : ''}`,
    );
  });
});

type Mode = 'replicas' | 'local';

/** Outbox shards (the default OUTBOX_SHARDS): each one hash slot. */
const SHARDS = 16;
/** Users of the test OpenID provider in the failover's stream, over most shards. */
const USERS = Array.from({ length: 48 }, (_, i) => `failover-user-${i}`);
/** Clients per session-service instance in the stream. */
const WORKERS = 4;
/** The pause before a 503 is retried (shorter than its Retry-After: the test's clock). */
const RETRY_MS = 200;
/** A round still answered 503 after this long is given up (and the test fails on it). */
const ROUND_GIVE_UP_MS = 60_000;

interface Answer {
  mode: Mode;
  op: 'sign-in' | 'logout';
  shard: number;
  at: number;
  /** The HTTP status, or the error of a call that got no answer (e.g. a client timeout). */
  status: number | string;
  reply?: Reply;
}

/** A session signed in and ended: `acknowledged` 204, else seen ended (401) on a retry after a 503. */
interface Round {
  mode: Mode;
  shard: number;
  session: Session;
  begun: number;
  ended: number;
  acknowledged: boolean;
}

function listAnswers(answers: Answer[]): string[] {
  return answers
    .slice(0, 10)
    .map(
      (a) =>
        `${a.mode} ${a.op} (shard ${a.shard}): ${a.status} ${JSON.stringify(a.reply?.body ?? '')}`,
    );
}

async function signInOidc(url: string, issuer: TestOidcIssuer, user: string, label: string) {
  return call(url, 'POST', '/auth/oidc', {
    body: { id_token: await issuer.sign({ sub: user }), device: { name: label } },
  });
}

function logoutCall(url: string, session: Session): Promise<Reply> {
  return call(url, 'POST', '/auth/logout', { token: session.accessToken });
}

function shardOfSession(session: Session): number {
  const shard = /^s(\d+)_/.exec(session.sessionId)?.[1];
  if (shard === undefined) throw new Error(`no shard in session id ${session.sessionId}`);
  return Number(shard);
}

function clusterClient(nodes: string): Cluster {
  const client = new Cluster(
    nodes.split(',').map((node) => {
      const [host = '', port = ''] = node.split(':');
      return { host, port: Number(port) };
    }),
  );
  client.on('error', () => undefined);
  return client;
}

/** A plain client of one node, failing at once when it is down. */
async function withNode<T>(node: RedisClusterNode, work: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis(node.url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 1_000,
    commandTimeout: 2_000,
  });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return await work(redis);
  } finally {
    redis.disconnect();
  }
}

/** The port of the primary serving `slot`, as the first of `nodes` that answers sees it. */
async function slotOwner(nodes: RedisClusterNode[], slot: number): Promise<number> {
  for (const node of nodes) {
    try {
      const ranges = await withNode(node, (redis) => redis.cluster('SLOTS'));
      const range = ranges.find(([from, to]) => slot >= from && slot <= to);
      const primary = range?.[2];
      if (primary) return primary[1];
    } catch {
      // the next node
    }
  }
  throw new Error(`no node answers who serves slot ${slot}`);
}

function replicationOf(node: RedisClusterNode): Promise<string> {
  return withNode(node, (redis) => redis.info('replication')).catch(() => '');
}

/** Waits until every one of `apis` refuses each of `sessions` (401 `invalid_token`), a few at a time. */
async function expectRejected(sessions: Session[], apis: AppHandle[]): Promise<void> {
  let waiting = apis.flatMap((api) => sessions.map((session) => ({ api, session })));
  await eventually(
    `${sessions.length} ended sessions refused by ${apis.map((a) => a.label).join(', ')}`,
    async () => {
      const answers = await inBatches(waiting, 32, async ({ api, session }) => {
        const reply = await call(api.url, 'GET', '/me', { token: session.accessToken });
        return reply.status === 401
          ? undefined
          : `${api.label} × ${session.label}: ${reply.status}`;
      });
      waiting = waiting.filter((_, i) => answers[i] !== undefined);
      if (waiting.length > 0)
        throw new Error(`${waiting.length} not yet, e.g. ${answers.find((a) => a !== undefined)}`);
      return true;
    },
    { timeoutMs: 60_000, intervalMs: 250 },
  );
}

/** `work` over `items`, at most `size` at a time; results in the items' order. */
async function inBatches<T, R>(
  items: T[],
  size: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(size, items.length) }, worker));
  return results;
}
