// Benchmark: what the revocation guard costs per request, against no authentication at all
// and against the design most NestJS tutorials teach (passport-jwt + a Redis deny-list GET).
//
// Starts, on free loopback ports with data under .data/bench-*: Kafka, Redis, a local OpenID
// Connect issuer, the session service (signing ES256, which jsonwebtoken can verify) and the
// publisher (the guard needs its heartbeats), then one process per variant of one NestJS app
// on Fastify (bench/overhead-app, mode chosen by BENCH_MODE), all serving GET /me:
//   noauth  a fixed {sub, session_id}, no authentication
//   guard   RevocationGuardModule (libs/revocation-guard): JWKS-verified token, in-memory
//           revocation store fed from Kafka
//   naive   @nestjs/passport + passport-jwt (PEM public key) + one ioredis GET of
//           denylist:<sid> per request
// and, for information only: the guard with its verified-token cache off, and the real
// content-api's GET /me. The same 1,000 real access tokens go to every variant, rotated per
// request. autocannon runs in a child process; rounds interleave the variants, in a rotating
// order, and the medians over the rounds are reported. Results go to
// bench/results/request-overhead.json. See bench/README.md.
//
//   node --disable-warning=TimeoutNegativeWarning bench/request-overhead.mjs   (npm run bench:overhead)
//
// BENCH_ROUNDS, BENCH_DURATION_S, BENCH_WARMUP_S, BENCH_CONNECTIONS and BENCH_TOKENS override
// the defaults (3, 10, 3, 16, 1,000).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { build } from '../scripts/build.mjs';
import { procCpuMs } from './lib/cpu.mjs';
import { post, request } from './lib/http.mjs';
import { startLoadGenerator } from './lib/load-generator.mjs';
import { command, kafkaVersion, machine, median, round } from './lib/report.mjs';
import { benchRun, log, root, Stage } from './lib/run.mjs';
import { es256SigningKeys, openSessions, startCore, startEntry } from './lib/stack.mjs';

const resultsFile = join(root, 'bench', 'results', 'request-overhead.json');

const envCount = (name, fallback) => {
  const value = Number(process.env[name]);
  return Number.isInteger(value) && value > 0 ? value : fallback;
};

/** What is measured; recorded with the results so runs can be compared. */
const parameters = {
  route: 'GET /me',
  rounds: envCount('BENCH_ROUNDS', 3),
  duration_s: envCount('BENCH_DURATION_S', 10),
  warmup_s: envCount('BENCH_WARMUP_S', 3),
  connections: envCount('BENCH_CONNECTIONS', 16),
  /** Distinct access tokens, one per session, rotated per request; the same for every variant. */
  tokens: envCount('BENCH_TOKENS', 1_000),
  pause_between_runs_ms: 1_000,
  token_signing: 'ES256 (P-256), from the session service',
  /** Longer than the default 300 s, so no token expires while the rounds run. */
  access_token_ttl_s: 900,
  load_generator:
    'autocannon 9 in a child process: HTTP/1.1 keep-alive, no pipelining, one request in flight per connection',
};

/** Variants, in the order of the first round; `informational` ones are not in the goals. */
const VARIANTS = [
  { key: 'noauth', label: 'no auth', mode: 'noauth' },
  { key: 'guard', label: 'revocation guard', mode: 'guard' },
  { key: 'naive', label: 'passport-jwt + Redis GET', mode: 'naive' },
  {
    key: 'guard_no_token_cache',
    label: 'guard, token cache off',
    mode: 'guard',
    env: { VERIFIED_TOKEN_CACHE_SIZE: '0' },
    informational: true,
  },
  { key: 'content_api', label: 'content-api GET /me', app: 'content-api', informational: true },
];

const runsPerVariant = parameters.rounds + 1; // + the warm-up
const limits = {
  wholeRunMs:
    150_000 +
    VARIANTS.length * runsPerVariant * (parameters.duration_s + 3) * 1000 +
    parameters.tokens * 20,
  revokedMs: 15_000,
};

const run = benchRun({ wholeRunMs: limits.wholeRunMs });

const bearer = (token) => ({ authorization: `Bearer ${token}` });

/** Each variant answers 200 with the token's own session (noauth: its fixed body). */
async function checkServes(variant, session) {
  const reply = await request(`${variant.url}/me`, { headers: bearer(session.accessToken) });
  const body = reply.status === 200 ? JSON.parse(reply.text) : undefined;
  if (!body || (variant.mode !== 'noauth' && body.session_id !== session.sessionId))
    throw new Error(`${variant.key} answered ${reply.status} ${reply.text} for a live session`);
}

/** Each authenticating variant refuses a revoked session, each the way its design works. */
async function checkRejectsRevoked(core, redis, variants, revoked) {
  await redis.set(`denylist:${revoked.sessionId}`, '1', 'EX', 900);
  const logout = await post(`${core.sessionService.url}/auth/logout`, undefined, {
    headers: bearer(revoked.accessToken),
  });
  if (logout.status !== 204) throw new Error(`logout answered ${logout.status}`);
  for (const variant of variants.filter((v) => v.mode !== 'noauth')) {
    await run.until(
      `${variant.key} to reject a revoked session`,
      async () =>
        (await request(`${variant.url}/me`, { headers: bearer(revoked.accessToken) })).status ===
        401,
      limits.revokedMs,
    );
  }
}

/** One measured autocannon run against one variant, with the CPU each process used. */
async function measure(loadGenerator, variant, durationS, core) {
  const pids = {
    app: variant.pid,
    load_generator: loadGenerator.pid,
    redis: core.redis.pid,
    kafka: core.kafka.pid,
  };
  const before = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, procCpuMs(pid)]));
  const result = await loadGenerator.measure({
    url: variant.url,
    path: '/me',
    connections: parameters.connections,
    durationS,
  });
  run.checkRunning(`the run against ${variant.key}`);
  const cpu = {};
  for (const [name, pid] of Object.entries(pids)) {
    const used = procCpuMs(pid) - before[name];
    if (!Number.isFinite(used)) continue;
    cpu[name] = {
      cores_busy: round(used / (result.duration_s * 1000)),
      cpu_ms_per_request: round(used / Math.max(1, result.requests_2xx), 4),
    };
  }
  return {
    rps: round(result.requests_2xx / result.duration_s),
    p50_ms: result.latency_ms.p50,
    p99_ms: result.latency_ms.p99,
    max_ms: result.latency_ms.max,
    ...result,
    cpu,
  };
}

function summarize(rounds) {
  return {
    rps: round(median(rounds.map((r) => r.rps))),
    p50_ms: round(median(rounds.map((r) => r.p50_ms))),
    p99_ms: round(median(rounds.map((r) => r.p99_ms))),
    app_cpu_ms_per_request: round(
      median(rounds.map((r) => r.cpu.app?.cpu_ms_per_request ?? NaN)),
      4,
    ),
    non_2xx: rounds.reduce((sum, r) => sum + r.non_2xx + r.errors, 0),
    rounds,
  };
}

async function main() {
  await build();
  run.makeDataDir();
  const topic = `bench-overhead-${Date.now().toString(36)}`;
  const ttl = String(parameters.access_token_ttl_s);
  const core = await startCore(run, {
    topic,
    sessionEnv: { SIGNING_KEYS: await es256SigningKeys(), ACCESS_TOKEN_TTL_SECONDS: ttl },
    publisherEnv: { ACCESS_TOKEN_MAX_TTL_SECONDS: ttl },
  });
  const redis = new Redis(core.redis.url, { maxRetriesPerRequest: 1 });
  run.track(Stage.client, 'redis client', redis, () => redis.disconnect());

  // Every variant is its own process, all started now and idle but for the one measured.
  const bootAt = Date.now();
  const guardEnv = { ACCESS_TOKEN_MAX_TTL_SECONDS: ttl };
  await Promise.all(
    VARIANTS.map(async (variant) => {
      const label = `overhead-${variant.key}`;
      const app = variant.app
        ? await core.startApi(variant.app, label, guardEnv)
        : await startEntry(run, {
            label,
            entry: join('dist', 'bench', 'overhead-app', 'main.js'),
            logFile: join(run.dataDir, 'logs', `${label}.log`),
            env: {
              ...core.appEnv('content-api', label),
              ...guardEnv,
              BENCH_MODE: variant.mode,
              // The API wiring has no Redis (APIs never use it); the naive design does.
              ...(variant.mode === 'naive' && { REDIS_URL: core.redis.url }),
              ...variant.env,
            },
          });
      Object.assign(variant, { url: app.url, pid: app.pid });
    }),
  );
  log(`${VARIANTS.length} variants ready in ${Date.now() - bootAt} ms`);

  const sessions = await openSessions(core, parameters.tokens + 1, { tag: topic });
  const revoked = sessions.pop();
  log(`${sessions.length} sessions opened; checking every variant`);
  for (const variant of VARIANTS) await checkServes(variant, sessions[0]);
  await checkRejectsRevoked(core, redis, VARIANTS, revoked);

  const loadGenerator = startLoadGenerator(run);
  await loadGenerator.setTokens(sessions.map((s) => s.accessToken));

  for (const variant of VARIANTS) {
    log(`warm-up: ${variant.key}, ${parameters.warmup_s} s`);
    variant.warmup = await measure(loadGenerator, variant, parameters.warmup_s, core);
    await sleep(parameters.pause_between_runs_ms);
  }
  const rounds = Object.fromEntries(VARIANTS.map((v) => [v.key, []]));
  for (let r = 0; r < parameters.rounds; r += 1) {
    // A rotating order: no variant always goes first, or always follows the same one.
    const order = VARIANTS.map((_, i) => VARIANTS[(i + r) % VARIANTS.length]);
    for (const variant of order) {
      const result = await measure(loadGenerator, variant, parameters.duration_s, core);
      rounds[variant.key].push({ round: r + 1, ...result });
      log(
        `round ${r + 1}/${parameters.rounds} ${variant.key.padEnd(20)} ${String(result.rps).padStart(9)} req/s   p99 ${result.p99_ms} ms${result.non_2xx ? `   non-2xx ${result.non_2xx}` : ''}`,
      );
      await sleep(parameters.pause_between_runs_ms);
    }
  }

  const v = Object.fromEntries(
    VARIANTS.map((variant) => [variant.key, summarize(rounds[variant.key])]),
  );
  const ratio = (a, b) => round(a / b, 3);
  const results = {
    noauth_rps: v.noauth.rps,
    guard_rps: v.guard.rps,
    naive_rps: v.naive.rps,
    noauth_p99_ms: v.noauth.p99_ms,
    guard_p99_ms: v.guard.p99_ms,
    naive_p99_ms: v.naive.p99_ms,
    guard_vs_noauth_rps_ratio: ratio(v.guard.rps, v.noauth.rps),
    guard_vs_naive_rps_ratio: ratio(v.guard.rps, v.naive.rps),
    goals: {
      guard_vs_noauth: {
        statement: 'guard rps >= 0.85 x no auth',
        met: v.guard.rps >= 0.85 * v.noauth.rps,
      },
      guard_vs_naive: { statement: 'guard rps >= 2 x naive', met: v.guard.rps >= 2 * v.naive.rps },
      guard_p99: {
        statement: 'guard p99 no worse than naive p99',
        met: v.guard.p99_ms <= v.naive.p99_ms,
      },
    },
    // The same ratios within each round (the variants measured minutes apart, not seconds).
    per_round_ratios: Array.from({ length: parameters.rounds }, (_, r) => ({
      guard_vs_noauth: ratio(rounds.guard[r].rps, rounds.noauth[r].rps),
      guard_vs_naive: ratio(rounds.guard[r].rps, rounds.naive[r].rps),
    })),
    informational: {
      guard_no_token_cache_rps: v.guard_no_token_cache.rps,
      guard_no_token_cache_p99_ms: v.guard_no_token_cache.p99_ms,
      content_api_rps: v.content_api.rps,
      content_api_p99_ms: v.content_api.p99_ms,
    },
    variants: Object.fromEntries(
      VARIANTS.map((variant) => [
        variant.key,
        {
          what: variant.label,
          ...(variant.informational && { informational: true }),
          ...(variant.env && { env: variant.env }),
          ...v[variant.key],
          warmup: variant.warmup,
        },
      ]),
    ),
    machine: machine(),
    kafka_version: kafkaVersion(),
    date: new Date().toISOString(),
    command: command(),
    parameters,
  };
  mkdirSync(join(root, 'bench', 'results'), { recursive: true });
  writeFileSync(resultsFile, `${JSON.stringify(results, null, 2)}\n`);
  printSummary(results);
}

function printSummary(r) {
  const n = (value) => value.toLocaleString('en-US');
  const row = (key) => {
    const x = r.variants[key];
    return `  ${x.what.padEnd(26)} ${n(x.rps).padStart(9)} req/s   p50 ${x.p50_ms} ms   p99 ${x.p99_ms} ms   app CPU ${x.app_cpu_ms_per_request} ms/request${x.non_2xx ? `   NON-2XX ${x.non_2xx}` : ''}${x.informational ? '   (informational)' : ''}`;
  };
  const p = r.parameters;
  process.stdout.write(
    [
      '',
      `Request overhead, ${p.route}, ${p.connections} connections, ${p.duration_s} s × ${p.rounds} rounds (medians), ${p.tokens} distinct tokens (load ${r.machine.load_average_1_5_15m.join(' ')})`,
      ...Object.keys(r.variants).map(row),
      `  guard / no auth = ${r.guard_vs_noauth_rps_ratio} (goal >= 0.85: ${r.goals.guard_vs_noauth.met ? 'met' : 'NOT met'})`,
      `  guard / naive   = ${r.guard_vs_naive_rps_ratio} (goal >= 2: ${r.goals.guard_vs_naive.met ? 'met' : 'NOT met'})`,
      `  guard p99 ${r.guard_p99_ms} ms vs naive p99 ${r.naive_p99_ms} ms (goal: no worse: ${r.goals.guard_p99.met ? 'met' : 'NOT met'})`,
      `Results: ${relative(root, resultsFile)}`,
      '',
    ].join('\n'),
  );
}

await run.main(main);
