// Benchmark: how many sign-ins (password, OIDC) and refreshes per second one session-service
// process serves, each case for a fixed time at a fixed number of requests in flight (global
// fetch), and how refresh compares with the bare cost of signing an access token in this
// process. What it starts and measures: bench/README.md ("Session service"). Results in
// bench/results/session-service.json.
//
//   node --disable-warning=TimeoutNegativeWarning bench/session-service.ts
//
// BENCH_DURATION_S, BENCH_WARMUP_S and BENCH_CONCURRENCY override the defaults (15, 3, 16).
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { build } from '../scripts/build.ts';
import { envInt } from '../scripts/lib/process.ts';
import { startRedis, type RedisHandle } from '../scripts/redis/redis.ts';
import type { AppHandle } from '../scripts/system.ts';
import { builtLib } from './lib/built.ts';
import { cpuBetween, cpuSnapshot, type CpuSnapshot } from './lib/cpu.ts';
import { fetchPost } from './lib/http.ts';
import {
  distribution,
  envelope,
  msFields,
  n,
  printSummary,
  round,
  writeResults,
} from './lib/report.ts';
import { benchRun, log, Stage } from './lib/run.ts';
import { startSessionService } from './lib/stack.ts';

/** What is measured; recorded with the results so runs can be compared. */
const parameters = {
  duration_s: envInt('BENCH_DURATION_S', 15, { min: 1 }),
  warmup_s: envInt('BENCH_WARMUP_S', 3),
  concurrency: envInt('BENCH_CONCURRENCY', 16, { min: 1 }),
  /** The HTTP floor (GET /health/live) and the 16-in-flight signing figure are side notes: shorter. */
  side_duration_s: 5,
  side_warmup_s: 1,
  /** ID tokens signed before the OIDC case; each sign-in uses one, each for a user of its own. */
  id_token_pool: 40_000,
  redis_appendfsync: 'everysec' as const,
  /** The schema caps DEFAULT_MAX_DEVICES at 1,000 (1,000,000 is refused at start). */
  default_max_devices: 1_000,
  rate_limits: 1_000_000,
};

/** Every wait is bounded; the watchdog leaves room for the shutdown within ~3 minutes. */
const limits = {
  wholeRunMs: 40_000 + 7 * (parameters.warmup_s + parameters.duration_s) * 1000,
  /** Requests still in flight when a case ends are awaited (not counted), at most this long. */
  drainMs: 30_000,
  requestTimeoutMs: 30_000,
};

const run = benchRun({ wholeRunMs: limits.wholeRunMs });

/** What this run started, for the CPU figures. */
const started: { redis?: RedisHandle; service?: AppHandle } = {};
const serviceUrl = () => started.service?.url ?? '';

/** The processes whose CPU time each case reports: the service, Redis, this process. */
const cpuNow = () =>
  cpuSnapshot({
    service: started.service?.pid,
    redis: started.redis?.pid,
    load_generator: process.pid,
  });

// ---------------------------------------------------------------------------------------
// The load: `concurrency` workers, each with one request in flight at a time.

/**
 * Runs `request(worker)` in `concurrency` loops for warm-up + duration. A request counts when
 * it completes inside the measured window (after the warm-up, before the end); those still in
 * flight at the end are awaited, not counted. Latency and rate are of the 2xx answers; others
 * are counted by status.
 */
async function loadCase(
  name: string,
  request: (worker: number) => Promise<number>,
  {
    warmupS = parameters.warmup_s,
    durationS = parameters.duration_s,
    concurrency = parameters.concurrency,
    before,
  }: {
    warmupS?: number;
    durationS?: number;
    concurrency?: number;
    before?: () => Promise<unknown>;
  } = {},
) {
  run.checkRunning(name);
  await before?.();
  log(`${name}: ${warmupS} s warm-up, ${durationS} s measured, ${concurrency} in flight`);
  const t0 = performance.now();
  const measureFrom = t0 + warmupS * 1000;
  const measureUntil = measureFrom + durationS * 1000;
  const latencies: number[] = [];
  const errors: Record<string, number> = {};
  let ok = 0;
  let exhausted = false as boolean;
  let cpuStart: CpuSnapshot | undefined;
  let cpuEnd: CpuSnapshot | undefined;
  const cpuTimers = [
    setTimeout(() => (cpuStart = cpuNow()), warmupS * 1000),
    setTimeout(() => (cpuEnd = cpuNow()), (warmupS + durationS) * 1000),
  ];
  const worker = async (id: number) => {
    while (performance.now() < measureUntil && run.aborted === undefined) {
      const startedAt = performance.now();
      let status: number | string;
      try {
        status = await request(id);
      } catch (error) {
        if (error instanceof PoolExhausted) {
          exhausted = true;
          return;
        }
        status = error instanceof Error && error.name === 'TimeoutError' ? 'timeout' : 'network';
      }
      const endedAt = performance.now();
      if (endedAt < measureFrom || endedAt > measureUntil) continue;
      if (typeof status === 'number' && status >= 200 && status < 300) {
        ok += 1;
        latencies.push(endedAt - startedAt);
      } else {
        errors[status] = (errors[status] ?? 0) + 1;
      }
    }
  };
  const workers = Array.from({ length: concurrency }, (_, id) => worker(id));
  // Workers stop starting requests at the end; the last ones are drained, bounded.
  const endOfWindow = Math.max(0, measureUntil - performance.now());
  await Promise.race([
    Promise.all(workers),
    sleep(endOfWindow + limits.drainMs, undefined, { ref: false }),
  ]);
  for (const timer of cpuTimers) clearTimeout(timer);
  run.checkRunning(name);
  const endedAt = performance.now();
  // Early end (ID-token pool ran out): rate over the time actually measured.
  const measuredMs = Math.max(1, Math.min(endedAt, measureUntil) - measureFrom);
  cpuStart ??= cpuNow();
  cpuEnd ??= cpuNow();
  return {
    rps: round(ok / (measuredMs / 1000)),
    ...msFields(distribution(latencies)),
    count: ok,
    errors,
    concurrency,
    duration_s: round(measuredMs / 1000),
    warmup_s: warmupS,
    ...(exhausted ? { ended_early: 'ID-token pool exhausted' } : {}),
    cpu: cpuBetween(cpuStart, cpuEnd, ok),
  };
}

class PoolExhausted extends Error {}
type Case = Awaited<ReturnType<typeof loadCase>>;

/** POSTs JSON to the service; resolves with the status (and the parsed body when asked). */
const post = (path: string, body: unknown, { json = false } = {}) =>
  fetchPost(`${serviceUrl()}${path}`, {
    body,
    json,
    timeoutMs: limits.requestTimeoutMs,
  });

// ---------------------------------------------------------------------------------------
// Bare signing: the access token the service signs, in this process, nothing else.

const ACCESS_TOKEN_ISSUER = 'http://127.0.0.1:3000'; // the service's default ISSUER
const ACCESS_TOKEN_AUDIENCE = 'session-revocation-apis';

function signAccessToken(privateKey: CryptoKey) {
  const iat = Math.floor(Date.now() / 1000);
  // The claims TokenService.issueAccessToken sets, with ids of the same shapes and lengths.
  return new SignJWT({ sid: `s3_${'A'.repeat(22)}`, roles: ['user'] })
    .setProtectedHeader({ alg: 'EdDSA', kid: 'k', typ: 'at+jwt' })
    .setIssuer(ACCESS_TOKEN_ISSUER)
    .setSubject(`oidc-${'B'.repeat(43)}`)
    .setAudience(ACCESS_TOKEN_AUDIENCE)
    .setIssuedAt(iat)
    .setExpirationTime(iat + 300)
    .setJti(randomUUID())
    .sign(privateKey);
}

/** Bare signing as a case of its own, in this process, `inFlight` signatures at a time. */
async function bareSigning(
  privateKey: CryptoKey,
  { warmupS, durationS, inFlight }: { warmupS: number; durationS: number; inFlight: number },
) {
  const sign = async () => {
    await signAccessToken(privateKey);
    return 200;
  };
  const c = await loadCase('bare jose signing', sign, {
    warmupS,
    durationS,
    concurrency: inFlight,
  });
  return {
    ops_per_s: Math.round(c.rps),
    ops: c.count,
    in_flight: inFlight,
    duration_s: c.duration_s,
    // jose signs through WebCrypto, whose jobs run on libuv's thread pool: CPU can exceed 1 core.
    cores_busy: c.cpu.load_generator?.cores_busy ?? null,
  };
}

/** Redis's `used_memory`, in bytes. */
async function redisUsedMemory(redis: RedisHandle): Promise<number> {
  const client = new Redis(redis.url);
  try {
    return Number(/^used_memory:(\d+)/m.exec(await client.info('memory'))?.[1]);
  } finally {
    client.disconnect();
  }
}

/** Answers other than 2xx, from a case's error counts. */
const failures = (errors: Record<string, number>) =>
  Object.values(errors).reduce((sum, count) => sum + count, 0);

// ---------------------------------------------------------------------------------------

async function main() {
  await build();
  const dataDir = run.makeDataDir();
  const redis = await startRedis({
    dataDir: join(dataDir, 'redis'),
    appendfsync: parameters.redis_appendfsync,
    log,
  });
  started.redis = run.track(Stage.infrastructure, 'redis', redis);
  const issuer = await builtLib('testing').startOidcIssuer();
  run.track(Stage.infrastructure, 'oidc-issuer', issuer);
  log(`Redis ${redis.url}, OIDC issuer ${issuer.issuer}`);

  const bootAt = Date.now();
  // RATE_LIMIT_* at parameters.rate_limits, DEFAULT_MAX_DEVICES at parameters.default_max_devices.
  const service = await startSessionService(run, {
    label: 'session-service',
    issuer,
    redisUrl: redis.url,
    logFile: join(dataDir, 'logs', 'session-service.log'),
    env: { REDIS_KEY_PREFIX: `bench-${Date.now().toString(36)}:`, SEED_DEMO_USERS: 'true' },
  });
  started.service = service;
  log(`session service ready at ${service.url} in ${Date.now() - bootAt} ms`);

  // ID tokens, signed now so that signing them is not measured; each for a user of its own,
  // so no sign-in meets the device limit (an eviction would add a revocation to the case).
  const signStart = performance.now();
  const idTokens: string[] = [];
  const runTag = Date.now().toString(36);
  for (let i = 0; i < parameters.id_token_pool; i += 500) {
    run.checkRunning('the signing of ID tokens');
    const batch = Array.from({ length: Math.min(500, parameters.id_token_pool - i) }, (_, j) =>
      issuer.sign({ sub: `bench-${runTag}-${i + j}` }, { expiresIn: 600 }),
    );
    idTokens.push(...(await Promise.all(batch)));
  }
  log(`${idTokens.length} ID tokens signed in ${Math.round(performance.now() - signStart)} ms`);
  let nextIdToken = 0;
  const takeIdToken = () => {
    const idToken = idTokens[nextIdToken++];
    if (idToken === undefined) throw new PoolExhausted();
    return idToken;
  };

  const device = { name: 'bench' };

  // (a) Password sign-in: scrypt on libuv's thread pool (4 threads, 2 cores here).
  const login_password = await loadCase('POST /auth/login', async () => {
    const body = { username: 'alice', password: 'alice-pass', device };
    return (await post('/auth/login', body)).status;
  });

  // (b) OIDC sign-in: ID-token verification (ES256, JWKS cached) and a session in Redis.
  // Redis's memory before and after tells what a session costs it (a user of its own each).
  const memoryBefore = await redisUsedMemory(redis);
  const login_oidc = await loadCase('POST /auth/oidc', async () => {
    const body = { id_token: takeIdToken(), device };
    return (await post('/auth/oidc', body)).status;
  });
  const sessionsOpened = nextIdToken - failures(login_oidc.errors);
  const redis_bytes_per_session = Math.round(
    ((await redisUsedMemory(redis)) - memoryBefore) / sessionsOpened,
  );

  // (c) Refresh: each worker chains its own session's rotations.
  const refreshTokens: string[] = [];
  const newSession = async (worker: number) => {
    const { status, body } = await post(
      '/auth/oidc',
      { id_token: takeIdToken(), device },
      { json: true },
    );
    if (!body) throw new Error(`could not open a session for refresh (HTTP ${status})`);
    refreshTokens[worker] = body.refresh_token;
  };
  const refresh = await loadCase(
    'POST /auth/refresh',
    async (worker) => {
      const { status, body } = await post(
        '/auth/refresh',
        { refresh_token: refreshTokens[worker] },
        { json: true },
      );
      // A broken chain (should not happen) is counted, and the worker starts a new session.
      if (body) refreshTokens[worker] = body.refresh_token;
      else await newSession(worker);
      return status;
    },
    {
      before: () =>
        Promise.all(Array.from({ length: parameters.concurrency }, (_, i) => newSession(i))),
    },
  );

  // The same HTTP stack answering without work: what no POST can beat on this machine.
  const health_live_floor = await loadCase(
    'GET /health/live',
    async () => {
      const response = await fetch(`${service.url}/health/live`, {
        signal: AbortSignal.timeout(limits.requestTimeoutMs),
      });
      await response.arrayBuffer();
      return response.status;
    },
    { warmupS: parameters.side_warmup_s, durationS: parameters.side_duration_s },
  );

  // (d) Bare signing, while the service is idle: one at a time (the figure the goal uses),
  // then with as many in flight as the HTTP cases (a side note: jose's WebCrypto jobs run on
  // libuv's thread pool, so both cores can sign).
  const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  const bare = await bareSigning(privateKey, {
    warmupS: parameters.warmup_s,
    durationS: parameters.duration_s,
    inFlight: 1,
  });
  const bareParallel = await bareSigning(privateKey, {
    warmupS: parameters.side_warmup_s,
    durationS: parameters.side_duration_s,
    inFlight: parameters.concurrency,
  });

  const cases = { login_password, login_oidc, refresh, health_live_floor };
  const ratio = round(cases.refresh.rps / bare.ops_per_s, 4);
  // CPU, not throughput: the service's CPU per refresh against the CPU of one bare signing
  // (this process's, one at a time), as the overhead benchmark counts an app's CPU per request.
  const signCpuMs = ((bare.cores_busy ?? Number.NaN) * 1_000) / bare.ops_per_s;
  const refreshCpuMs = cases.refresh.cpu.service?.cpu_ms_per_request ?? Number.NaN;
  const cpuRatio = round(refreshCpuMs / signCpuMs, 2);
  const results = {
    login_password_rps: cases.login_password.rps,
    login_password_p50_ms: cases.login_password.p50_ms,
    login_password_p99_ms: cases.login_password.p99_ms,
    login_oidc_rps: cases.login_oidc.rps,
    login_oidc_p50_ms: cases.login_oidc.p50_ms,
    login_oidc_p99_ms: cases.login_oidc.p99_ms,
    refresh_rps: cases.refresh.rps,
    refresh_p50_ms: cases.refresh.p50_ms,
    refresh_p99_ms: cases.refresh.p99_ms,
    bare_jose_sign_ops_per_s: bare.ops_per_s,
    refresh_vs_bare_signing_ratio: ratio,
    refresh_cpu_vs_signing_ratio: cpuRatio,
    refresh_service_cpu_ms: refreshCpuMs,
    bare_sign_cpu_ms: round(signCpuMs, 3),
    redis_bytes_per_session,
    goals: {
      refresh_cpu_vs_signing_ratio: {
        statement: "the service's CPU per refresh at most 2 × the CPU of one bare signing",
        met: cpuRatio <= 2,
      },
    },
    goal: {
      statement: 'refresh throughput at least half of bare signing (ratio >= 0.5)',
      met: ratio >= 0.5,
      note:
        'one machine: the load generator (this process, fetch) shares the CPUs with the service ' +
        'and Redis; see cases.*.cpu for how much each took',
    },
    concurrency: parameters.concurrency,
    duration_s: parameters.duration_s,
    ...envelope(),
    cases,
    bare_jose_sign: { one_in_flight: bare, concurrent: bareParallel },
    // Context for the ratio: signing with as many in flight as the HTTP cases, and the HTTP
    // floor (a no-op GET through the same stack, same load generator) against bare signing.
    side_ratios: {
      refresh_vs_concurrent_signing: round(cases.refresh.rps / bareParallel.ops_per_s, 4),
      health_live_floor_vs_bare_signing: round(cases.health_live_floor.rps / bare.ops_per_s, 4),
      refresh_vs_health_live_floor: round(cases.refresh.rps / cases.health_live_floor.rps, 4),
    },
    parameters,
  };
  const file = writeResults('session-service.json', results);
  const r = results;
  const errors = (e: Record<string, number>) =>
    Object.keys(e).length === 0
      ? 'none'
      : Object.entries(e)
          .map(([status, count]) => `${count}×${status}`)
          .join(' ');
  const line = (label: string, c: Case) =>
    `  ${label.padEnd(22)} ${n(c.rps).padStart(9)} req/s   p50 ${n(c.p50_ms)} ms   p99 ${n(c.p99_ms)} ms   max ${n(c.max_ms)} ms   n=${n(c.count)}   errors: ${errors(c.errors)}`;
  const cpu = (label: string, c: Case) => {
    const each = (figure: 'cores_busy' | 'cpu_ms_per_request') =>
      ['service', 'redis', 'load_generator']
        .map((name) => `${name.replace('_', ' ')} ${c.cpu[name]?.[figure] ?? '?'}`)
        .join(', ');
    return `  ${label.padEnd(22)} cores busy: ${each('cores_busy')}   CPU ms/request: ${each('cpu_ms_per_request')}`;
  };
  const m = r.machine;
  const b = r.bare_jose_sign;
  printSummary([
    `Session service (${m.cpus} × ${m.cpu_model}, ${m.total_memory_gib} GiB, Node ${m.node}, load ${m.load_average_1_5_15m.join(' ')})`,
    `${r.concurrency} requests in flight, ${r.duration_s} s measured after ${r.cases.refresh.warmup_s} s warm-up; latency and rate of 2xx answers`,
    line('POST /auth/login', r.cases.login_password),
    line('POST /auth/oidc', r.cases.login_oidc),
    line('POST /auth/refresh', r.cases.refresh),
    line('GET /health/live', r.cases.health_live_floor) +
      `   (floor, ${r.cases.health_live_floor.duration_s} s)`,
    `  bare jose EdDSA sign    ${n(b.one_in_flight.ops_per_s)} ops/s one at a time (${b.one_in_flight.cores_busy} cores busy), ${n(b.concurrent.ops_per_s)} ops/s with ${b.concurrent.in_flight} in flight (${b.concurrent.cores_busy} cores busy)`,
    `Where the CPU went (measured windows):`,
    cpu('login (password)', r.cases.login_password),
    cpu('login (oidc)', r.cases.login_oidc),
    cpu('refresh', r.cases.refresh),
    cpu('health/live', r.cases.health_live_floor),
    `service CPU per refresh / CPU per bare signing = ${r.refresh_service_cpu_ms} / ${r.bare_sign_cpu_ms} ms = ${r.refresh_cpu_vs_signing_ratio} (goal <= 2: ${r.goals.refresh_cpu_vs_signing_ratio.met ? 'met' : 'NOT met'})`,
    `Redis memory per session (OIDC sign-ins, a user each): ${n(r.redis_bytes_per_session)} bytes`,
    `refresh / bare signing = ${r.refresh_vs_bare_signing_ratio} (goal >= 0.5: ${r.goal.met ? 'met' : 'NOT met'}; the load generator shares the ${m.cpus} CPUs with the service and Redis)`,
    `  side ratios: refresh / signing with ${b.concurrent.in_flight} in flight = ${r.side_ratios.refresh_vs_concurrent_signing}; ` +
      `no-op GET floor / bare signing = ${r.side_ratios.health_live_floor_vs_bare_signing}; refresh / floor = ${r.side_ratios.refresh_vs_health_live_floor}`,
    `Results: ${file}`,
  ]);
}

await run.main(main);
