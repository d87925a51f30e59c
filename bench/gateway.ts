// Benchmark: the gateway (apps/gateway), issue 12. How long after a logout everywhere (from a
// phone) every gateway instance refuses the user's cookie sessions, one revocation at a time,
// and what the gateway's hop costs a request, side by side in one run: GET /api/content/me
// through the gateway with a cookie, with a bearer JWT and with an opaque token (cache warm),
// against content-api's GET /me called directly with the JWT. What it starts and measures:
// bench/README.md ("Gateway"). Results in bench/results/gateway.json.
//
//   node --disable-warning=TimeoutNegativeWarning bench/gateway.ts   (npm run bench:gateway)
//
// BENCH_REVOCATIONS, BENCH_ROUNDS, BENCH_DURATION_S, BENCH_WARMUP_S, BENCH_CONNECTIONS and
// BENCH_TOKENS override the defaults (1,000, 3, 10, 3, 16, 1,000).
import type { Agent } from 'node:http';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { build } from '../scripts/build.ts';
import { envInt } from '../scripts/lib/process.ts';
import type { AppHandle } from '../scripts/system.ts';
import { bearer, keepAliveAgent, post, request, type TokenReply } from './lib/http.ts';
import {
  roundsFromEnv,
  sideBySide,
  startLoadGenerator,
  type Target,
} from './lib/load-generator.ts';
import { acceptedEverywhere, refusalFigures, refusedEverywhere } from './lib/refusals.ts';
import {
  clock,
  distribution,
  envelope,
  formatMs,
  n,
  printSummary,
  round,
  writeResults,
} from './lib/report.ts';
import { benchRun, inParallel, log } from './lib/run.ts';
import { BENCH_PASSWORD, startCore, writeBenchUsers, type Core } from './lib/stack.ts';

/** What is measured; recorded with the results so runs can be compared. */
const parameters = {
  gateway_instances: 2,
  revocations: envInt('BENCH_REVOCATIONS', 1_000, { min: 1 }),
  warmup_revocations: 50,
  revoked_with: 'POST /auth/logout-all with the access token of a second (phone) session',
  checked_with:
    'GET /bff/session with the cookie session made at that instance, one kept-alive connection per instance, polled back to back',
  /** Idle time after each revocation, so the next one starts from a quiet system. */
  pause_ms: 5,
  ...roundsFromEnv(),
  /** Users for the side-by-side runs, each with a cookie, a JWT and an opaque-token session. */
  sessions: envInt('BENCH_TOKENS', 1_000, { min: 1 }),
  /** Longer than the default 300 s, so no token expires while the rounds run. */
  access_token_ttl_s: 900,
  /** The bench users' hashes: cheap, so that a sign-in costs no scrypt time (others: OWASP). */
  password_hash: 'scrypt N=16, r=1, p=1',
};

/** What is compared; `path` on the gateway is the API's route under /api/content. */
const TARGETS = {
  direct_jwt: 'content-api GET /me, bearer JWT (no gateway)',
  gateway_cookie: 'gateway GET /api/content/me, __Host-session cookie and x-csrf',
  gateway_jwt: 'gateway GET /api/content/me, bearer JWT',
  gateway_opaque: 'gateway GET /api/content/me, bearer opaque token (cache warm)',
};
type TargetKey = keyof typeof TARGETS;

const limits = {
  wholeRunMs:
    240_000 +
    (parameters.warmup_revocations + parameters.revocations) * 200 +
    4 * (parameters.rounds + 1) * (parameters.duration_s + 3) * 1000 +
    parameters.sessions * 30,
  /** A revocation that some instance still accepts after this long fails the run. */
  perRevocationMs: 15_000,
  acceptedMs: 10_000,
};

const run = benchRun({ wholeRunMs: limits.wholeRunMs });
/** A cookie session made at `gateway` (POST /bff/login): its Cookie header and session id. */
async function cookieLogin(gateway: AppHandle, username: string, device: string) {
  const reply = await post(
    `${gateway.url}/bff/login`,
    { username, password: BENCH_PASSWORD, device: { name: device } },
    { headers: { 'x-csrf': '1' } },
  );
  const cookie = reply.headers['set-cookie']?.find((c) => c.startsWith('__Host-session='));
  if (reply.status !== 200 || !cookie)
    throw new Error(`${gateway.label} /bff/login answered ${reply.status}: ${reply.text}`);
  const { session_id: sessionId } = JSON.parse(reply.text) as { session_id: string };
  return { cookie: cookie.split(';')[0] ?? '', sessionId };
}

/** A session at the session service (POST /auth/login), JWT or opaque access token. */
async function tokenLogin(core: Core, username: string, device: string, format = 'jwt') {
  const reply = await post(`${core.sessionService.url}/auth/login`, {
    ...{ username, password: BENCH_PASSWORD, device: { name: device }, token_format: format },
  });
  if (reply.status !== 200) throw new Error(`/auth/login answered ${reply.status}: ${reply.text}`);
  return JSON.parse(reply.text) as TokenReply;
}

// ---------------------------------------------------------------------------------------
// Propagation: a user with a cookie session at each gateway instance logs out everywhere from
// a phone. A gateway that refuses a cookie drops the shared Redis entry, so each instance is
// polled with a cookie session of its own: a refusal at one says nothing for the others.

type Gateway = AppHandle & { agent: Agent };

async function revokeOnce(
  core: Core,
  gateways: Gateway[],
  user: string,
  otherStatus: Record<number, number>,
) {
  const cookies = await Promise.all(gateways.map((gw) => cookieLogin(gw, user, gw.label)));
  const phone = await tokenLogin(core, user, 'phone');
  const points = gateways.map((gw, i) => ({
    label: gw.label,
    url: `${gw.url}/bff/session`,
    headers: { cookie: cookies[i]?.cookie },
    agent: gw.agent,
    sessionId: cookies[i]?.sessionId ?? '',
  }));
  await acceptedEverywhere(points, limits.acceptedMs);
  const sentAt = clock();
  const reply = await post(`${core.sessionService.url}/auth/logout-all`, undefined, {
    headers: bearer(phone.access_token),
  });
  const t0 = clock();
  if (reply.status !== 204) throw new Error(`logout-all answered ${reply.status}: ${reply.text}`);
  return refusedEverywhere(points, { sentAt, t0 }, limits.perRevocationMs, otherStatus);
}

async function propagation(core: Core, instances: AppHandle[]) {
  const gateways = instances.map((gw) => ({ ...gw, agent: keepAliveAgent(1) }));
  const otherStatus: Record<number, number> = {};
  const samples = [];
  const total = parameters.warmup_revocations + parameters.revocations;
  log(`${parameters.warmup_revocations} warm-up revocations, then ${parameters.revocations}`);
  for (let i = 0; i < total; i += 1) {
    run.checkRunning('the revocations');
    const sample = await revokeOnce(core, gateways, `bench-${i}`, otherStatus);
    if (i >= parameters.warmup_revocations) samples.push(sample);
    if ((i + 1) % 250 === 0) log(`${i + 1} of ${total}`);
    await sleep(parameters.pause_ms);
  }
  for (const gw of gateways) gw.agent.destroy();
  const fields = { ...refusalFigures('gateway_propagation_', samples), other_status: otherStatus };
  return { fields, dist: distribution(samples.map((s) => s.total)) };
}

// ---------------------------------------------------------------------------------------
// Side by side: the same users' sessions through the gateway (cookie, JWT, opaque) and direct.

async function sideBySideRuns(core: Core, gateway: AppHandle, api: AppHandle, firstUser: number) {
  const sessions: { cookie: string; jwt: TokenReply; opaque: TokenReply }[] = [];
  await inParallel(parameters.sessions, 16, async (i) => {
    const user = `bench-${firstUser + i}`;
    const { cookie } = await cookieLogin(gateway, user, 'browser');
    const [jwt, opaque] = await Promise.all([
      tokenLogin(core, user, 'cli'),
      tokenLogin(core, user, 'third-party', 'opaque'),
    ]);
    sessions[i] = { cookie, jwt, opaque };
  });
  const on = (app: AppHandle, path: string, headers: Record<string, string>[]) => ({
    ...{ url: app.url, pid: app.pid, path, headers },
  });
  const via = '/api/content/me';
  const targets: Record<TargetKey, Omit<Target, 'key'>> = {
    direct_jwt: on(
      api,
      '/me',
      sessions.map((s) => bearer(s.jwt.access_token)),
    ),
    gateway_cookie: on(
      gateway,
      via,
      sessions.map((s) => ({ cookie: s.cookie, 'x-csrf': '1' })),
    ),
    gateway_jwt: on(
      gateway,
      via,
      sessions.map((s) => bearer(s.jwt.access_token)),
    ),
    gateway_opaque: on(
      gateway,
      via,
      sessions.map((s) => bearer(s.opaque.access_token)),
    ),
  };
  // Each serves its session (every opaque token exchanged once: the cache is warm).
  const sessionOf = { direct_jwt: 'jwt', gateway_jwt: 'jwt', gateway_opaque: 'opaque' } as const;
  for (const [key, target] of Object.entries(targets) as [TargetKey, Target][])
    await inParallel(sessions.length, 16, async (i) => {
      const reply = await request(`${target.url}${target.path}`, { headers: target.headers[i] });
      const kind = key === 'gateway_cookie' ? undefined : sessionOf[key];
      const expected = kind && sessions[i]?.[kind].session_id;
      const body = reply.status === 200 ? (JSON.parse(reply.text) as { session_id?: string }) : {};
      if (reply.status !== 200 || (expected && body.session_id !== expected))
        throw new Error(`${key} answered ${reply.status} ${reply.text} for a live session`);
    });
  log(`${sessions.length} users with a cookie, a JWT and an opaque-token session; all served`);
  const others = { content_api: api.pid, redis: core.redis.pid, kafka: core.kafka.pid };
  const loadGenerator = startLoadGenerator(run, others);
  const list = Object.entries(targets).map(([key, target]) => ({ key, ...target }));
  return sideBySide(loadGenerator, list, parameters);
}

// ---------------------------------------------------------------------------------------

await run.main(async () => {
  await build();
  run.makeDataDir();
  const topic = `bench-gateway-${Date.now().toString(36)}`;
  const usersFile = join(run.dataDir, 'users.json');
  const users = parameters.warmup_revocations + parameters.revocations + parameters.sessions;
  writeBenchUsers(usersFile, users);
  const ttl = String(parameters.access_token_ttl_s);
  const guardEnv = { ACCESS_TOKEN_MAX_TTL_SECONDS: ttl };
  const core = await startCore(run, {
    topic,
    apps: ['content-api', 'gateway'],
    instances: { gateway: parameters.gateway_instances },
    env: {
      'session-service': { USERS_FILE: usersFile, ACCESS_TOKEN_TTL_SECONDS: ttl },
      'revocation-publisher': guardEnv,
      'content-api': guardEnv,
      gateway: guardEnv,
    },
  });
  const gateways = core.system.instances('gateway');
  const [gateway] = gateways;
  if (!gateway) throw new Error('no gateway running');

  const startedAt = performance.now();
  const { fields: propagated, dist } = await propagation(core, gateways);
  const propagationS = (performance.now() - startedAt) / 1000;
  const firstUser = parameters.warmup_revocations + parameters.revocations;
  const of = await sideBySideRuns(core, gateway, core.system.app('content-api'), firstUser);

  const [direct, cookie, jwt, opaque] = (Object.keys(TARGETS) as TargetKey[]).map(of);
  if (!direct || !cookie || !jwt || !opaque) throw new Error('a target has no figures');
  const ratio = (a: number, b: number) => round(a / b, 3);
  const p99 = dist.p99 ?? Infinity;
  const results = {
    ...propagated,
    gateway_vs_direct_rps_ratio: ratio(cookie.rps, direct.rps),
    gateway_vs_direct_p99_overhead_ms: round(cookie.p99_ms - direct.p99_ms),
    phantom_cached_vs_jwt_rps_ratio: ratio(opaque.rps, jwt.rps),
    goals: {
      gateway_propagation: {
        statement: 'p99 <= 50 ms from the logout-all answer to every gateway refusing its cookie',
        met: p99 <= 50,
      },
      gateway_vs_direct: {
        statement: 'gateway (cookie) rps >= 0.6 x content-api called directly (JWT)',
        met: cookie.rps >= 0.6 * direct.rps,
      },
      phantom_cached_vs_jwt: {
        statement: 'gateway rps with a cached opaque token >= 0.95 x with a JWT',
        met: opaque.rps >= 0.95 * jwt.rps,
      },
    },
    per_round_ratios: Array.from({ length: parameters.rounds }, (_, r) => ({
      gateway_vs_direct: ratio(cookie.rounds[r]?.rps ?? NaN, direct.rounds[r]?.rps ?? NaN),
      phantom_cached_vs_jwt: ratio(opaque.rounds[r]?.rps ?? NaN, jwt.rounds[r]?.rps ?? NaN),
    })),
    targets: Object.fromEntries(
      Object.entries(TARGETS).map(([key, what]) => [key, { what, ...of(key) }]),
    ),
    propagation_duration_s: round(propagationS, 1),
    ...envelope({ kafka: true }),
    parameters,
  };
  const file = writeResults('gateway.json', results);

  const met = (goal: { met: boolean }) => (goal.met ? 'met' : 'NOT met');
  const row = (key: TargetKey) => {
    const x = of(key);
    return `  ${key.padEnd(16)} ${n(x.rps).padStart(9)} req/s   p50 ${x.p50_ms} ms   p99 ${x.p99_ms} ms   app CPU ${x.app_cpu_ms_per_request} ms/request${x.non_2xx ? `   NON-2XX ${x.non_2xx}` : ''}`;
  };
  const { goals } = results;
  printSummary([
    `Gateway, ${parameters.gateway_instances} instances (load ${results.machine.load_average_1_5_15m.join(' ')})`,
    `  logout-all answered → every gateway refuses its cookie (${results.gateway_propagation_samples} revocations):`,
    `    ${formatMs(dist)}   (goal p99 <= 50 ms: ${met(goals.gateway_propagation)})`,
    `  side by side, ${parameters.connections} connections, ${parameters.duration_s} s × ${parameters.rounds} rounds (medians), ${parameters.sessions} users:`,
    ...(Object.keys(TARGETS) as TargetKey[]).map(row),
    `  gateway (cookie) / direct = ${results.gateway_vs_direct_rps_ratio} (goal >= 0.6: ${met(goals.gateway_vs_direct)}), p99 +${results.gateway_vs_direct_p99_overhead_ms} ms`,
    `  opaque (cached) / JWT through the gateway = ${results.phantom_cached_vs_jwt_rps_ratio} (goal >= 0.95: ${met(goals.phantom_cached_vs_jwt)})`,
    `Results: ${file}`,
  ]);
});
