// Benchmark: the API guard (libs/revocation-guard), issue 5.
//
// 1. Replay on start: how long a new API instance takes to become ready when the revocation
//    window holds 1,000,000 events, and the memory it then holds. The events are produced once
//    to a 12-partition topic of a Kafka broker of its own; each replay is a fresh guard in a
//    process of its own (bench/guard-replay-child.mjs), so its memory is measured alone.
// 2. Cost per request of `authenticate()`, in this process: a token already verified (cache
//    hit), a token never seen (full EdDSA verification), and a guard without the cache.
//
// Starts what it needs on free loopback ports, with data under .data/bench-*; results go to
// bench/results/guard.json. See bench/README.md.
//
//   npm run bench:guard   (or: node --expose-gc bench/guard.mjs)
//
// BENCH_REPLAY_EVENTS overrides the number of events replayed (default 1,000,000).
import { fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createWriteStream, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { exportJWK, generateKeyPair, jwtVerify, SignJWT } from 'jose';
import { CompressionTypes, Kafka, logLevel, Partitioners } from 'kafkajs';
import { build } from '../scripts/build.mjs';
import { startKafka } from '../scripts/kafka/kafka.mjs';
import { freePort } from '../scripts/lib/process.mjs';
import { procCpuMs } from './lib/cpu.mjs';
import { command, kafkaVersion, machine, median, round } from './lib/report.mjs';
import { benchRun, log, root, Stage } from './lib/run.mjs';

const require = createRequire(import.meta.url);
const resultsFile = join(root, 'bench', 'results', 'guard.json');

const envCount = (name, fallback) => {
  const value = Number(process.env[name]);
  return Number.isInteger(value) && value > 0 ? value : fallback;
};

/** What is measured; recorded with the results so runs can be compared. */
const parameters = {
  replay_events: envCount('BENCH_REPLAY_EVENTS', 1_000_000),
  /** Events are keyed by user id (the partition key), spread over this many users. */
  replay_users: 100_000,
  /** Every 50th event has no session id: it ends every session of its user (log out everywhere). */
  user_wide_every: 50,
  topic_partitions: 12,
  produce_batch_messages: 5_000,
  produce_sends_in_flight: 4,
  replay_runs: 3,
  /**
   * The replaying guards' longest token lifetime (their window is this + 5 s tolerance + 1 s).
   * Longer than the 300 s default only so that the events produced at the start are still in
   * the window at the last replay, minutes later; what a replay reads and holds is the same.
   */
  replay_access_token_max_ttl_s: 900,
  request_rounds: 7,
  /** Per round, for the cheap cases (a cache hit is a map lookup). */
  hit_ops_per_round: 100_000,
  /** Per round, for the cases that verify a signature. */
  verify_ops_per_round: 2_500,
  /** Distinct tokens in the pool the hit and no-cache cases cycle through. */
  token_pool: 1_000,
  /**
   * The cached guard's verified-token cache (the default size), filled before measuring, as on
   * a busy instance: other tokens, then the pool's. Misses then evict the least recently used.
   */
  verified_token_cache_size: 10_000,
  heartbeat_interval_ms: 1_000,
  /** The timed loops let timers and I/O run every this many calls (see timeCalls). */
  yield_every_calls: 1_000,
};

/** Every wait is bounded; the watchdog leaves room for the shutdown within 6 minutes. */
const limits = {
  wholeRunMs: 330_000,
  produceMs: 150_000,
  replayRunMs: 90_000,
  childExitMs: 15_000,
  guardReadyMs: 30_000,
};

const run = benchRun({ wholeRunMs: limits.wholeRunMs });
const ISSUER_AUDIENCE = 'bench-api';
const n = (value) => (value === undefined ? '?' : value.toLocaleString('en-US'));

// ---------------------------------------------------------------------------------------
// The issuer's side: an Ed25519 key, its JWKS on a local HTTP server, access tokens signed here.

async function startIssuer() {
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  const kid = `bench-${randomUUID().slice(0, 8)}`;
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'EdDSA', use: 'sig' };
  const body = JSON.stringify({
    keys: [{ kty: jwk.kty, crv: jwk.crv, x: jwk.x, kid, alg: 'EdDSA', use: 'sig' }],
  });
  const server = createServer((request, response) => {
    if (request.method === 'GET' && request.url === '/.well-known/jwks.json')
      response.writeHead(200, { 'content-type': 'application/json' }).end(body);
    else response.writeHead(404).end();
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject).listen(0, '127.0.0.1', resolve);
  });
  const issuer = `http://127.0.0.1:${server.address().port}`;
  return {
    issuer,
    jwksUrl: `${issuer}/.well-known/jwks.json`,
    publicKey,
    /** `count` access tokens as the session service issues them, each of its own session. */
    async sign(count, tag) {
      const iat = Math.floor(Date.now() / 1000);
      const tokens = [];
      for (let i = 0; i < count; i += 100) {
        const chunk = Array.from({ length: Math.min(100, count - i) }, (_, j) =>
          new SignJWT({ sid: `s${(i + j) % 16}_${tag}${(i + j).toString(36).padStart(20, '0')}` })
            .setProtectedHeader({ alg: 'EdDSA', kid, typ: 'at+jwt' })
            .setIssuer(issuer)
            .setSubject(`bench-user-${i + j}`)
            .setAudience(ISSUER_AUDIENCE)
            .setIssuedAt(iat)
            .setExpirationTime(iat + 300)
            .setJti(randomUUID())
            .sign(privateKey),
        );
        tokens.push(...(await Promise.all(chunk)));
      }
      return tokens;
    },
    stop: () =>
      new Promise((resolve) => {
        server.close(resolve);
        server.closeAllConnections();
      }),
  };
}

// ---------------------------------------------------------------------------------------
// Producing the window: 1,000,000 valid revocation events, then a heartbeat per partition.

/** Realistic ids: what the session service hands out (`s<shard>_` + 22 base64url characters). */
const sessionId = (i) => `s${i % 16}_${i.toString(36).padStart(22, '0')}`;

async function produceWindow(contracts, producer, topic, issuer) {
  const total = parameters.replay_events;
  const every = parameters.user_wide_every;
  let next = 0;
  let sent = 0;
  let bytes = 0;
  /** Events that name a session: the revoked sessions every replay must end up holding. */
  let sessions = 0;
  let nextReport = 200_000;
  // The contract's encoder validates every event with its schema, which takes as long as
  // building it: done for every 1,000th event, whose message must come out the same; the others
  // are built by the same steps without the check (and every replay decodes and validates all).
  const { headers } = contracts.encodeRevocation(
    contracts.buildRevocationEvent({
      issuer,
      userId: 'u',
      initiatingEntity: 'user',
      reason: 'user_logout',
      at: Date.now(),
    }),
  );
  const batch = () => {
    const from = next;
    next = Math.min(total, from + parameters.produce_batch_messages);
    // One instant per batch: all of them recent, inside any replay window that follows.
    const at = Date.now();
    const messages = [];
    for (let i = from; i < next; i += 1) {
      const userId = `bench-user-${i % parameters.replay_users}`;
      const event = contracts.buildRevocationEvent({
        issuer,
        userId,
        sessionId: i % every === every - 1 ? undefined : sessionId(i),
        initiatingEntity: 'user',
        reason: 'user_logout',
        at,
      });
      if (i % every !== every - 1) sessions += 1;
      const message = { key: userId, value: JSON.stringify(event), headers };
      if (i % 1_000 === 0) {
        const checked = contracts.encodeRevocation(event);
        if (checked.key !== message.key || checked.value !== message.value)
          throw new Error(`event ${i} does not encode as the contract encodes it`);
      }
      bytes += message.value.length;
      messages.push(message);
    }
    return messages;
  };
  const sender = async () => {
    while (next < total) {
      run.checkRunning('producing');
      const messages = batch();
      await producer.send({ topic, acks: 1, compression: CompressionTypes.None, messages });
      sent += messages.length;
      if (sent >= nextReport) {
        log(`produced ${n(sent)} of ${n(total)}`);
        nextReport += 200_000;
      }
    }
  };
  // First a heartbeat per partition, alone: right after a topic is created the broker may still
  // refuse writes to some partitions (not the leader yet), and KafkaJS then sends the whole
  // request again, writing twice what the other partitions had taken. Only heartbeats may be
  // written twice that way, never the events counted.
  await sendHeartbeats(contracts, producer, topic);
  const started = performance.now();
  await withTimeout(
    Promise.all(Array.from({ length: parameters.produce_sends_in_flight }, sender)),
    limits.produceMs,
    `producing ${n(total)} events`,
  );
  const durationMs = performance.now() - started;
  await sendHeartbeats(contracts, producer, topic);
  return {
    events: sent,
    duration_ms: Math.round(durationMs),
    events_per_s: Math.round(sent / (durationMs / 1000)),
    sessions_revoked: sessions,
    mean_value_bytes: Math.round(bytes / sent),
  };
}

function sendHeartbeats(contracts, producer, topic) {
  const sentAt = Date.now();
  return producer.send({
    topic,
    acks: 1,
    messages: Array.from({ length: parameters.topic_partitions }, (_, partition) =>
      contracts.encodeHeartbeat(
        {
          publisher_id: 'bench-guard',
          sent_at: sentAt,
          interval_ms: parameters.heartbeat_interval_ms,
          partitions: parameters.topic_partitions,
        },
        partition,
      ),
    ),
  });
}

/** Bytes of the topic's log segments on disk (all partitions). */
function topicBytesOnDisk(kafkaDataDir, topic) {
  const logDir = join(kafkaDataDir, 'kraft');
  let bytes = 0;
  for (const dir of readdirSync(logDir).filter((name) => name.startsWith(`${topic}-`)))
    for (const file of readdirSync(join(logDir, dir)))
      if (file.endsWith('.log')) bytes += statSync(join(logDir, dir, file)).size;
  return bytes;
}

/**
 * On a new broker the first consumer group to join waits for the group coordinator to load
 * (`__consumer_offsets` is created then): KafkaJS crashes the consumer on "the coordinator is
 * loading" and restarts it. A throwaway consumer joins first, so that no replay pays for it;
 * an API instance joining a running cluster never does.
 */
async function warmGroupCoordinator(client, topic) {
  const consumer = client.consumer({ groupId: `${topic}-warm-up`, maxWaitTimeInMs: 100 });
  const joined = new Promise((resolve) => consumer.on(consumer.events.GROUP_JOIN, resolve));
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [topic] });
    await consumer.run({ autoCommit: false, eachBatch: async () => undefined });
    await withTimeout(joined, 30_000, 'a consumer group to join (warm-up)');
  } finally {
    await consumer.disconnect();
  }
}

// ---------------------------------------------------------------------------------------
// One replay: a child process starts a fresh guard on the full topic and reports.

async function replayRun(index, settings, kafka) {
  const logFile = join(run.dataDir, 'logs', `replay-${index}.log`);
  mkdirSync(join(run.dataDir, 'logs'), { recursive: true });
  const out = createWriteStream(logFile);
  const child = fork(
    join(root, 'bench', 'guard-replay-child.mjs'),
    [JSON.stringify({ ...settings, run: index })],
    {
      execArgv: ['--expose-gc', '--disable-warning=TimeoutNegativeWarning'],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    },
  );
  let exited = false;
  const exit = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      exited = true;
      resolve({ code, signal });
    });
  });
  // Everything to its log; to the console only the child's own lines (progress, guard warnings),
  // not KafkaJS's (a retriable start-up error is logged as an error).
  child.stdout.pipe(out);
  child.stderr.pipe(out);
  createInterface({ input: child.stderr }).on('line', (line) => {
    if (line.startsWith('[replay ')) process.stderr.write(`${line}\n`);
  });
  // A client of this run: stopped first at the end, killed outright if this process exits.
  run.track(Stage.client, `replay ${index}`, {
    pid: child.pid,
    isAlive: () => !exited,
    stop: async () => {
      if (exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exit;
      clearTimeout(timer);
    },
  });

  const brokerCpuBefore = procCpuMs(kafka.pid);
  const report = await withTimeout(
    new Promise((resolve, reject) => {
      child.once('message', resolve);
      void exit.then(({ code, signal }) =>
        reject(new Error(`replay ${index} exited (${signal ?? code}) before it was ready`)),
      );
    }),
    limits.replayRunMs,
    `replay ${index} to be ready (see ${relative(root, logFile)})`,
  );
  const brokerCpuMs = procCpuMs(kafka.pid) - brokerCpuBefore;
  // The next run starts only once this one is gone: they must not compete for the CPUs.
  await withTimeout(exit, limits.childExitMs, `replay ${index} to exit`);
  return { ...report, broker_cpu_ms: brokerCpuMs };
}

function summarizeReplay(report, index, produced) {
  const { memory, replay, store } = report;
  // A replay that did not read and apply everything has no figure worth reporting.
  if (report.invalid_messages > 0 || replay.read !== produced.messages_on_topic)
    throw new Error(
      `replay ${index} read ${replay.read} of ${produced.messages_on_topic} messages, ${report.invalid_messages} invalid`,
    );
  if (store.sessions !== produced.sessions_revoked)
    throw new Error(
      `replay ${index} holds ${store.sessions} revoked sessions, not ${produced.sessions_revoked}`,
    );
  const heapGrowth = memory.after.heap_used - memory.before.heap_used;
  // The pace once messages flow: from the first sample with anything read to the end.
  const first = report.samples.find(([, read]) => read > 0);
  const flowingMs = first ? report.ready_ms - first[0] : undefined;
  return {
    run: index,
    ready_ms: Math.round(report.ready_ms),
    guard_reported_replay_ms: replay.durationMs,
    messages_read: replay.read,
    messages_in_window: replay.total,
    events_per_s: Math.round(replay.read / (report.ready_ms / 1000)),
    first_message_after_ms: report.first_read_ms,
    events_per_s_once_flowing: flowingMs
      ? Math.round((replay.read - first[1]) / (flowingMs / 1000))
      : undefined,
    revoked_sessions_held: store.sessions,
    users_revoked_held: store.users,
    heap_growth_bytes: heapGrowth,
    rss_growth_bytes: memory.after.rss - memory.before.rss,
    peak_rss_bytes: memory.peak_rss,
    bytes_per_revoked_session: round(heapGrowth / store.sessions, 1),
    memory_before: memory.before,
    memory_after: memory.after,
    events_applied: report.events_applied,
    guard_cpu_ms: Math.round(report.cpu_ms),
    guard_cpu_share: round(report.cpu_ms / report.ready_ms, 2),
    broker_cpu_ms:
      report.broker_cpu_ms === undefined ? undefined : Math.round(report.broker_cpu_ms),
    /** Messages read after each whole second since `start()`. */
    read_by_second: report.samples
      .filter(([at], i, all) => Math.floor(at / 1000) !== Math.floor((all[i + 1]?.[0] ?? 0) / 1000))
      .map(([at, read]) => ({ at_s: Math.floor(at / 1000), read })),
    guard_log: report.log,
  };
}

// ---------------------------------------------------------------------------------------
// Cost per request: `authenticate()` called one request after another, each awaited.

/**
 * Times `ops` calls made one after another, each awaited; `call(i)` returns the outcome, which
 * must be ok. Returns ns per call.
 */
async function timeCalls(what, ops, call) {
  const yieldEvery = parameters.yield_every_calls;
  run.checkRunning(what);
  globalThis.gc();
  let failed;
  const started = performance.now();
  for (let i = 0; i < ops; i += 1) {
    const outcome = await call(i);
    if (!outcome.ok) failed ??= outcome;
    // A loop of awaits on settled promises never leaves the microtask queue: let timers and
    // I/O run (the guard's consumer reading heartbeats), as between an API's requests.
    if (i % yieldEvery === yieldEvery - 1) await new Promise(setImmediate);
  }
  const elapsedMs = performance.now() - started;
  if (failed) throw new Error(`${what}: a call was refused: ${JSON.stringify(failed)}`);
  return (elapsedMs * 1e6) / ops;
}

async function verificationCounts(guard) {
  const counts = { hit: 0, miss: 0 };
  for (const { labels, value } of (await guard.metrics.verifications.get()).values)
    counts[labels.result] = value;
  return counts;
}

async function requestCost({ guardLib, contracts, producer, admin, issuer, brokers, topic }) {
  await admin.createTopics({
    topics: [{ topic, numPartitions: parameters.topic_partitions, replicationFactor: 1 }],
    waitForLeaders: true,
  });
  // As the publisher does: a heartbeat on every partition every second, so the view stays fresh.
  await sendHeartbeats(contracts, producer, topic);
  const timer = setInterval(() => {
    sendHeartbeats(contracts, producer, topic).catch((error) =>
      log(`heartbeat failed: ${error.message}`),
    );
  }, parameters.heartbeat_interval_ms);
  run.track(Stage.client, 'heartbeats', timer, () => clearInterval(timer));

  const quiet = {
    log: () => undefined,
    warn: (message) => log(`guard: ${message}`),
    error: (message) => log(`guard: ${message}`),
  };
  const guardWith = (label, options) =>
    run.track(
      Stage.client,
      label,
      guardLib.createRevocationGuard({
        serviceName: 'bench-guard',
        instanceId: label,
        brokers: [brokers],
        topic,
        jwksUrl: issuer.jwksUrl,
        issuer: issuer.issuer,
        audience: ISSUER_AUDIENCE,
        logger: quiet,
        ...options,
      }),
    );
  // The default cache (10,000 verified tokens remembered), and no cache: every call verifies.
  const cached = guardWith('guard-cached', {
    verifiedTokenCacheSize: parameters.verified_token_cache_size,
  });
  const uncached = guardWith('guard-uncached', { verifiedTokenCacheSize: 0 });
  await withTimeout(
    Promise.all([cached.start(), uncached.start()]),
    limits.guardReadyMs,
    'the request guards to be ready',
  );
  await run.until(
    'the request guards to have a fresh view',
    () => cached.health().freshness.fresh && uncached.health().freshness.fresh,
    limits.guardReadyMs,
  );

  const { request_rounds: rounds, hit_ops_per_round: hitOps } = parameters;
  const verifyOps = parameters.verify_ops_per_round;
  log('signing tokens');
  const pool = await issuer.sign(parameters.token_pool, 'pool');
  const fresh = await issuer.sign((rounds + 1) * verifyOps, 'new');
  const filler = await issuer.sign(
    parameters.verified_token_cache_size - parameters.token_pool,
    'fill',
  );
  const bearer = (token) => `Bearer ${token}`;
  const poolHeaders = pool.map(bearer);
  const freshHeaders = fresh.map(bearer);
  const poolSize = poolHeaders.length;

  // The cache filled: other tokens first, then the pool's, which are cache hits from here on.
  for (const header of [...filler.map(bearer), ...poolHeaders]) {
    const outcome = await cached.authenticate(header);
    if (!outcome.ok) throw new Error(`a token was refused: ${JSON.stringify(outcome)}`);
  }
  const cacheEntries = async () =>
    (
      await cached.metrics.registry
        .getSingleMetric('revocation_guard_verified_token_cache_entries')
        .get()
    ).values[0]?.value;
  const cacheEntriesBefore = await cacheEntries();
  if (cacheEntriesBefore !== parameters.verified_token_cache_size)
    throw new Error(`the verified-token cache holds ${cacheEntriesBefore} tokens, not full`);

  // For scale: jose's jwtVerify alone, with the checks the guard asks of it.
  const verifyOptions = {
    algorithms: ['EdDSA'],
    issuer: issuer.issuer,
    audience: ISSUER_AUDIENCE,
    typ: 'at+jwt',
    requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat', 'jti', 'sid'],
    clockTolerance: 5,
    maxTokenAge: 300,
  };
  /** `call(pass, i)`; `expect`: what the guard's verification counter must count for each call. */
  const plan = [
    {
      key: 'hit_same_token',
      guard: cached,
      expect: 'hit',
      ops: hitOps,
      call: () => cached.authenticate(poolHeaders[0]),
    },
    {
      key: 'hit_pool',
      guard: cached,
      expect: 'hit',
      ops: hitOps,
      call: (_, i) => cached.authenticate(poolHeaders[i % poolSize]),
    },
    {
      key: 'miss_new_tokens',
      guard: cached,
      expect: 'miss',
      ops: verifyOps,
      // Each token once: a slice of its own per pass (the warm-up pass is -1).
      call: (pass, i) => cached.authenticate(freshHeaders[(pass + 1) * verifyOps + i]),
    },
    {
      key: 'no_cache_pool',
      guard: uncached,
      expect: 'miss',
      ops: verifyOps,
      call: (_, i) => uncached.authenticate(poolHeaders[i % poolSize]),
    },
    {
      key: 'bare_jwt_verify',
      ops: verifyOps,
      call: async (_, i) => {
        await jwtVerify(pool[i % poolSize], issuer.publicKey, verifyOptions);
        return { ok: true };
      },
    },
  ];
  // Round after round, every case once per round: a machine whose load changes over time
  // skews every case alike, not the one that happened to run then. Pass -1 warms up.
  for (const entry of plan) Object.assign(entry, { samples: [], counted: { hit: 0, miss: 0 } });
  for (let pass = -1; pass < rounds; pass += 1) {
    log(pass < 0 ? 'warm-up round' : `round ${pass + 1} of ${rounds}`);
    for (const entry of plan) {
      const before = entry.guard && (await verificationCounts(entry.guard));
      const ns = await timeCalls(entry.key, entry.ops, (i) => entry.call(pass, i));
      if (pass >= 0) entry.samples.push(ns);
      if (!entry.guard) continue;
      const after = await verificationCounts(entry.guard);
      entry.counted.hit += after.hit - before.hit;
      entry.counted.miss += after.miss - before.miss;
    }
  }
  const cases = {};
  for (const { key, expect, ops, samples, counted, guard } of plan) {
    const calls = (rounds + 1) * ops;
    if (guard && counted[expect] !== calls)
      throw new Error(
        `${key}: expected ${n(calls)} cache ${expect}es, counted ${JSON.stringify(counted)}`,
      );
    const mid = median(samples);
    cases[key] = {
      ns_per_op: Math.round(mid),
      ops_per_s: Math.round(1e9 / mid),
      ns_per_op_min: Math.round(Math.min(...samples)),
      ns_per_op_max: Math.round(Math.max(...samples)),
      rounds_ns_per_op: samples.map((value) => Math.round(value)),
      ops_per_round: ops,
      ...(guard && { verifications: counted }),
    };
  }

  const ratio = (a, b) => round(cases[a].ns_per_op / cases[b].ns_per_op, 1);
  return {
    cases,
    ratios: {
      miss_vs_hit: ratio('miss_new_tokens', 'hit_pool'),
      no_cache_vs_hit: ratio('no_cache_pool', 'hit_pool'),
      miss_vs_bare_jwt_verify: round(
        cases.miss_new_tokens.ns_per_op / cases.bare_jwt_verify.ns_per_op,
        2,
      ),
    },
    token_bytes: poolHeaders[0].length - 'Bearer '.length,
    verified_token_cache_entries: { before: cacheEntriesBefore, after: await cacheEntries() },
  };
}

// ---------------------------------------------------------------------------------------

function withTimeout(promise, timeoutMs, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)),
        timeoutMs,
      );
    }),
  ]).finally(() => clearTimeout(timer));
}

await run.main(async () => {
  if (!globalThis.gc) throw new Error('run with --expose-gc (npm run bench:guard does)');
  const wallStart = performance.now();
  await build();
  const contracts = require(join(root, 'dist', 'libs', 'contracts', 'src', 'index.js'));
  const guardLib = require(join(root, 'dist', 'libs', 'revocation-guard', 'src', 'index.js'));
  const dataDir = run.makeDataDir();

  const bootStart = Date.now();
  const [kafka, issuer] = await Promise.all([
    freePort().then((port) =>
      startKafka({ port, dataDir: join(dataDir, 'kafka'), log }).then((handle) =>
        run.track(Stage.infrastructure, 'kafka', handle),
      ),
    ),
    startIssuer().then((handle) => run.track(Stage.infrastructure, 'jwks', handle)),
  ]);
  log(`Kafka ${kafka.brokers} up in ${Date.now() - bootStart} ms; JWKS at ${issuer.jwksUrl}`);

  const client = new Kafka({
    clientId: 'bench-guard',
    brokers: [kafka.brokers],
    // Quiet: KafkaJS logs retriable errors (no leader yet for a new topic) as errors; real
    // trouble shows as a send failing or a bounded wait timing out.
    logLevel: logLevel.NOTHING,
  });
  const admin = run.track(Stage.client, 'admin', client.admin(), () => admin.disconnect());
  const producer = run.track(
    Stage.client,
    'producer',
    client.producer({
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
    }),
    () => producer.disconnect(),
  );
  await Promise.all([admin.connect(), producer.connect()]);

  const prefix = `bench-guard-${Date.now().toString(36)}`;
  const replayTopic = `${prefix}-replay`;
  await admin.createTopics({
    topics: [
      { topic: replayTopic, numPartitions: parameters.topic_partitions, replicationFactor: 1 },
    ],
    waitForLeaders: true,
  });
  log(`producing ${n(parameters.replay_events)} revocation events to ${replayTopic}`);
  const produced = await produceWindow(contracts, producer, replayTopic, issuer.issuer);
  const offsets = await admin.fetchTopicOffsets(replayTopic);
  produced.messages_on_topic = offsets.reduce((sum, { high }) => sum + Number(high), 0);
  // The events, and a heartbeat per partition before and after them; more means retried sends.
  produced.messages_written_twice =
    produced.messages_on_topic - produced.events - 2 * parameters.topic_partitions;
  produced.topic_bytes_on_disk = topicBytesOnDisk(join(dataDir, 'kafka'), replayTopic);
  log(
    `produced ${n(produced.events)} events in ${n(produced.duration_ms)} ms ` +
      `(${n(produced.events_per_s)}/s, ${n(produced.messages_on_topic)} messages on the topic, ` +
      `${n(produced.messages_written_twice)} written twice)`,
  );

  await warmGroupCoordinator(client, replayTopic);

  const replaySettings = {
    brokers: kafka.brokers,
    topic: replayTopic,
    jwksUrl: issuer.jwksUrl,
    issuer: issuer.issuer,
    audience: ISSUER_AUDIENCE,
    accessTokenMaxTtlSeconds: parameters.replay_access_token_max_ttl_s,
  };
  const replays = [];
  for (let index = 1; index <= parameters.replay_runs; index += 1) {
    log(`replay ${index} of ${parameters.replay_runs}`);
    const summary = summarizeReplay(await replayRun(index, replaySettings, kafka), index, produced);
    log(
      `replay ${index}: ready in ${n(summary.ready_ms)} ms (${n(summary.events_per_s)} events/s), ` +
        `heap +${(summary.heap_growth_bytes / 1024 ** 2).toFixed(1)} MiB`,
    );
    replays.push(summary);
  }

  log('request cost');
  const request = await requestCost({
    guardLib,
    contracts,
    producer,
    admin,
    issuer,
    brokers: kafka.brokers,
    topic: `${prefix}-requests`,
  });

  const pick = (field) => median(replays.map((r) => r[field]));
  const results = {
    replay: {
      events: produced.events,
      messages_in_window: replays[0].messages_in_window,
      ready_ms: pick('ready_ms'),
      events_per_s: pick('events_per_s'),
      first_message_after_ms: pick('first_message_after_ms'),
      revoked_sessions_held: replays[0].revoked_sessions_held,
      users_revoked_held: replays[0].users_revoked_held,
      heap_growth_bytes: pick('heap_growth_bytes'),
      rss_growth_bytes: pick('rss_growth_bytes'),
      peak_rss_bytes: pick('peak_rss_bytes'),
      bytes_per_revoked_session: pick('bytes_per_revoked_session'),
      guard_cpu_share: pick('guard_cpu_share'),
      runs: replays,
      produced,
    },
    request,
    machine: machine(),
    kafka_version: kafkaVersion(),
    date: new Date().toISOString(),
    command: command(),
    parameters,
    wall_time_s: Math.round((performance.now() - wallStart) / 1000),
  };
  mkdirSync(join(root, 'bench', 'results'), { recursive: true });
  writeFileSync(resultsFile, `${JSON.stringify(results, null, 2)}\n`);
  printSummary(results);
});

function printSummary(r) {
  const mib = (bytes) => `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  const us = (ns) => `${(ns / 1000).toFixed(2)} µs`;
  const m = r.machine;
  const c = r.request.cases;
  const line = (label, key) =>
    `    ${label.padEnd(44)} ${us(c[key].ns_per_op).padStart(10)}/op  ${n(c[key].ops_per_s).padStart(9)} ops/s  (rounds ${us(c[key].ns_per_op_min)}–${us(c[key].ns_per_op_max)})`;
  process.stdout.write(
    [
      '',
      `API guard (Kafka ${r.kafka_version}, ${m.cpus} × ${m.cpu_model}, Node ${m.node}, load ${m.load_average_1_5_15m.join(' ')})`,
      `  replay on start, ${n(r.replay.messages_in_window)} messages in the window (median of ${r.replay.runs.length} runs, each a fresh process):`,
      `    ready after ${n(r.replay.ready_ms)} ms: ${n(r.replay.events_per_s)} events/s (runs: ${r.replay.runs.map((x) => n(x.ready_ms)).join(' · ')} ms)`,
      `    first message after ${n(r.replay.first_message_after_ms)} ms; guard CPU ${Math.round(r.replay.guard_cpu_share * 100)}% of the wall time`,
      `    held: ${n(r.replay.revoked_sessions_held)} revoked sessions, ${n(r.replay.users_revoked_held)} users; heap +${mib(r.replay.heap_growth_bytes)} (${r.replay.bytes_per_revoked_session} B per session), RSS +${mib(r.replay.rss_growth_bytes)}, peak RSS ${mib(r.replay.peak_rss_bytes)}`,
      `    (produced once: ${n(r.replay.produced.events)} events in ${n(r.replay.produced.duration_ms)} ms, ${mib(r.replay.produced.topic_bytes_on_disk)} on disk)`,
      `  authenticate(), one call after another, median of ${r.parameters.request_rounds} rounds:`,
      line('cache hit, same token', 'hit_same_token'),
      line(`cache hit, pool of ${n(r.parameters.token_pool)} tokens`, 'hit_pool'),
      line('cache miss, never-seen token (EdDSA verify)', 'miss_new_tokens'),
      line('cache size 0, pool tokens', 'no_cache_pool'),
      line('bare jose jwtVerify (reference)', 'bare_jwt_verify'),
      `    miss / hit ${r.request.ratios.miss_vs_hit} ×; no cache / hit ${r.request.ratios.no_cache_vs_hit} ×; miss / bare verify ${r.request.ratios.miss_vs_bare_jwt_verify} ×`,
      `Results: ${relative(root, resultsFile)} (${r.wall_time_s} s)`,
      '',
    ].join('\n'),
  );
}
