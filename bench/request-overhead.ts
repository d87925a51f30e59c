// Benchmark: what the revocation guard costs a request (GET /me), against no authentication
// and against the usual design (passport-jwt + a Redis deny-list), side by side in one run: each
// variant its own process (bench/overhead-app, by BENCH_MODE), the same access tokens sent to
// all, autocannon in a child process, rounds in a rotating order, medians reported. What it
// starts and measures: bench/README.md ("Request overhead"). Results in
// bench/results/request-overhead.json.
//
//   node --disable-warning=TimeoutNegativeWarning bench/request-overhead.ts   (npm run bench:overhead)
//
// BENCH_ROUNDS, BENCH_DURATION_S, BENCH_WARMUP_S, BENCH_CONNECTIONS and BENCH_TOKENS override
// the defaults (3, 10, 3, 16, 1,000).
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { build } from '../scripts/build.ts';
import { envInt } from '../scripts/lib/process.ts';
import { bearer, request } from './lib/http.ts';
import { roundsFromEnv, sideBySide, startLoadGenerator } from './lib/load-generator.ts';
import { envelope, n, printSummary, round, writeResults } from './lib/report.ts';
import { benchRun, log, Stage } from './lib/run.ts';
import {
  es256SigningKeys,
  logOut,
  openSessions,
  startCore,
  type Core,
  type Session,
} from './lib/stack.ts';

/** What is measured; recorded with the results so runs can be compared. */
const parameters = {
  route: 'GET /me',
  ...roundsFromEnv(),
  /** Distinct access tokens, one per session, rotated per request; the same for every variant. */
  tokens: envInt('BENCH_TOKENS', 1_000, { min: 1 }),
  token_signing: 'ES256 (P-256), from the session service',
  /** Longer than the default 300 s, so no token expires while the rounds run. */
  access_token_ttl_s: 900,
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
  {
    key: 'content_api',
    label: 'content-api GET /me',
    app: 'content-api' as const,
    informational: true,
  },
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

type Running = (typeof VARIANTS)[number] & { url: string; pid: number | undefined };

/** Each variant answers 200 with the token's own session (noauth: its fixed body). */
async function checkServes(variant: Running, session: Session) {
  const reply = await request(`${variant.url}/me`, { headers: bearer(session.accessToken) });
  const body =
    reply.status === 200 ? (JSON.parse(reply.text) as { session_id?: string }) : undefined;
  if (!body || (variant.mode !== 'noauth' && body.session_id !== session.sessionId))
    throw new Error(`${variant.key} answered ${reply.status} ${reply.text} for a live session`);
}

/** Each authenticating variant refuses a revoked session, each the way its design works. */
async function checkRejectsRevoked(core: Core, variants: Running[], revoked: Session) {
  const redis = new Redis(core.redis.url, { maxRetriesPerRequest: 1 });
  run.track(Stage.client, 'redis client', redis, () => {
    redis.disconnect();
  });
  await redis.set(`denylist:${revoked.sessionId}`, '1', 'EX', 900);
  await logOut(core.sessionService.url, revoked.accessToken);
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

await run.main(async () => {
  await build();
  run.makeDataDir();
  const topic = `bench-overhead-${Date.now().toString(36)}`;
  const ttl = String(parameters.access_token_ttl_s);
  const guardEnv = { ACCESS_TOKEN_MAX_TTL_SECONDS: ttl };
  const core = await startCore(run, {
    topic,
    env: {
      'session-service': { SIGNING_KEYS: await es256SigningKeys(), ACCESS_TOKEN_TTL_SECONDS: ttl },
      'revocation-publisher': guardEnv,
    },
  });

  // Every variant is its own process, all started now and idle but for the one measured.
  const bootAt = Date.now();
  const variants: Running[] = await Promise.all(
    VARIANTS.map(async (variant) => {
      const { url, pid } = await core.system.startApp('content-api', {
        label: `overhead-${variant.key}`,
        ...(!variant.app && { entry: join('dist', 'bench', 'overhead-app', 'main.js') }),
        env: {
          ...guardEnv,
          ...(variant.mode && { BENCH_MODE: variant.mode }),
          // The API wiring has no Redis (APIs never use it); the naive design does.
          ...(variant.mode === 'naive' && { REDIS_URL: core.redis.url }),
          ...variant.env,
        },
      });
      return { ...variant, url, pid };
    }),
  );
  log(`${variants.length} variants ready in ${Date.now() - bootAt} ms`);

  const sessions = await openSessions(core, parameters.tokens + 1, { tag: topic });
  const revoked = sessions.pop();
  const [first] = sessions;
  if (!revoked || !first) throw new Error('no sessions opened');
  log(`${sessions.length} sessions opened; checking every variant`);
  for (const variant of variants) await checkServes(variant, first);
  await checkRejectsRevoked(core, variants, revoked);

  const loadGenerator = startLoadGenerator(run, { redis: core.redis.pid, kafka: core.kafka.pid });
  const headers = sessions.map((s) => bearer(s.accessToken));
  const targets = variants.map(({ key, url, pid }) => ({ key, url, pid, path: '/me', headers }));
  const of = await sideBySide(loadGenerator, targets, parameters);
  const [noauth, guard, naive] = [of('noauth'), of('guard'), of('naive')];
  const ratio = (a: number, b: number) => round(a / b, 3);
  const rps = (key: string, r: number) => of(key).rounds[r]?.rps ?? NaN;
  const results = {
    noauth_rps: noauth.rps,
    guard_rps: guard.rps,
    naive_rps: naive.rps,
    noauth_p99_ms: noauth.p99_ms,
    guard_p99_ms: guard.p99_ms,
    naive_p99_ms: naive.p99_ms,
    guard_vs_noauth_rps_ratio: ratio(guard.rps, noauth.rps),
    guard_vs_naive_rps_ratio: ratio(guard.rps, naive.rps),
    goals: {
      guard_vs_noauth: {
        statement: 'guard rps >= 0.85 x no auth',
        met: guard.rps >= 0.85 * noauth.rps,
      },
      guard_vs_naive: { statement: 'guard rps >= 2 x naive', met: guard.rps >= 2 * naive.rps },
      guard_p99: {
        statement: 'guard p99 no worse than naive p99',
        met: guard.p99_ms <= naive.p99_ms,
      },
    },
    // The same ratios within each round (the variants measured minutes apart, not seconds).
    per_round_ratios: Array.from({ length: parameters.rounds }, (_, r) => ({
      guard_vs_noauth: ratio(rps('guard', r), rps('noauth', r)),
      guard_vs_naive: ratio(rps('guard', r), rps('naive', r)),
    })),
    informational: {
      guard_no_token_cache_rps: of('guard_no_token_cache').rps,
      guard_no_token_cache_p99_ms: of('guard_no_token_cache').p99_ms,
      content_api_rps: of('content_api').rps,
      content_api_p99_ms: of('content_api').p99_ms,
    },
    variants: Object.fromEntries(
      variants.map((variant) => [
        variant.key,
        {
          what: variant.label,
          ...(variant.informational && { informational: true }),
          ...(variant.env && { env: variant.env }),
          ...of(variant.key),
        },
      ]),
    ),
    ...envelope({ kafka: true }),
    parameters,
  };
  const file = writeResults('request-overhead.json', results);

  const row = (variant: Running) => {
    const x = of(variant.key);
    return `  ${variant.label.padEnd(26)} ${n(x.rps).padStart(9)} req/s   p50 ${x.p50_ms} ms   p99 ${x.p99_ms} ms   app CPU ${x.app_cpu_ms_per_request} ms/request${x.non_2xx ? `   NON-2XX ${x.non_2xx}` : ''}${variant.informational ? '   (informational)' : ''}`;
  };
  const p = parameters;
  const met = (goal: { met: boolean }) => (goal.met ? 'met' : 'NOT met');
  printSummary([
    `Request overhead, ${p.route}, ${p.connections} connections, ${p.duration_s} s × ${p.rounds} rounds (medians), ${p.tokens} distinct tokens (load ${results.machine.load_average_1_5_15m.join(' ')})`,
    ...variants.map(row),
    `  guard / no auth = ${results.guard_vs_noauth_rps_ratio} (goal >= 0.85: ${met(results.goals.guard_vs_noauth)})`,
    `  guard / naive   = ${results.guard_vs_naive_rps_ratio} (goal >= 2: ${met(results.goals.guard_vs_naive)})`,
    `  guard p99 ${guard.p99_ms} ms vs naive p99 ${naive.p99_ms} ms (goal: no worse: ${met(results.goals.guard_p99)})`,
    `Results: ${file}`,
  ]);
});
