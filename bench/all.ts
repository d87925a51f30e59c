// `npm run bench`: every benchmark, one after the other (each starts and stops what it
// measures), then bench/results/latest.json, the figures of all of them in one place.
//
//   node --disable-warning=TimeoutNegativeWarning bench/all.ts [--only propagation,request_overhead]
//
// With --only, the other benchmarks are not run; latest.json takes their figures from their
// last results file, and says so (`sources.*.ran_in_this_command: false`, with its date).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { command, machine, writeResults } from './lib/report.ts';
import { log, root } from './lib/run.ts';

const RUN_COMMAND = command();

const quiet = '--disable-warning=TimeoutNegativeWarning';
const gc = '--expose-gc';
/**
 * Every benchmark, quickest first; each stops by itself (its own watchdog) within `boundS`,
 * and writes bench/results/<key with dashes>.json.
 */
const ALL = [
  { key: 'revocation_store', file: 'revocation-store', flags: [gc], boundS: 120 },
  { key: 'session_service', file: 'session-service', flags: [quiet], boundS: 240 },
  { key: 'durability', file: 'durability', flags: [quiet], boundS: 280 },
  { key: 'publisher', file: 'publisher-outbox-to-topic', flags: [quiet], boundS: 300 },
  { key: 'guard_replay', file: 'guard-replay', flags: [gc, quiet], boundS: 390 },
  { key: 'guard_request_cost', file: 'guard-request-cost', flags: [gc, quiet], boundS: 390 },
  { key: 'propagation', file: 'propagation', flags: [quiet], boundS: 330 },
  { key: 'request_overhead', file: 'request-overhead', flags: [quiet], boundS: 600 },
  { key: 'gateway', file: 'gateway', flags: [quiet], boundS: 720 },
  { key: 'console', file: 'console', flags: [quiet], boundS: 1_200 },
  { key: 'idp_logout', file: 'idp-logout', flags: [quiet], boundS: 840 },
  { key: 'ssf', file: 'ssf', flags: [quiet], boundS: 420 },
  { key: 'fan_out', file: 'fan-out', flags: [quiet], boundS: 1_800 },
  { key: 'storm', file: 'storm', flags: [quiet], boundS: 540 },
].map((b) => ({ ...b, file: `${b.file}.ts`, results: `${b.key.replaceAll('_', '-')}.json` }));
type Benchmark = (typeof ALL)[number];
const resultsDir = join(root, 'bench', 'results');

const onlyAt = process.argv.indexOf('--only');
const only = onlyAt === -1 ? undefined : (process.argv[onlyAt + 1] ?? '').split(',');
for (const key of only ?? [])
  if (!ALL.some((b) => b.key === key))
    throw new Error(`--only: no benchmark "${key}" (${ALL.map((b) => b.key).join(', ')})`);

// ---------------------------------------------------------------------------------------
// One child at a time; a signal to this process goes to it, and it stops what it started.

let current: ChildProcess | undefined;
let interrupted: NodeJS.Signals | undefined;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    interrupted = signal;
    if (current) current.kill(signal);
    else process.exit(signal === 'SIGINT' ? 130 : 143);
  });
}

process.once('exit', () => current?.kill('SIGTERM'));

function runBenchmark({ file, flags, boundS }: Benchmark): Promise<string> {
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = { ...process.env, BENCH_INVOKED_BY: RUN_COMMAND };
    delete env.npm_lifecycle_event;
    // A process group of its own: Ctrl-C reaches the child once, from here, so it stops what
    // it started in order instead of taking a second signal as "stop waiting".
    const child = spawn(process.execPath, [...flags, join('bench', file)], {
      cwd: root,
      env,
      stdio: 'inherit',
      detached: true,
    });
    current = child;
    // The child's own watchdog fires first; this one only if the child itself hangs.
    const watchdog = setTimeout(
      () => {
        log(`${file} still running after ${boundS + 60} s; stopping it`);
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 30_000).unref();
      },
      (boundS + 60) * 1000,
    );
    child.once('exit', (code, signal) => {
      clearTimeout(watchdog);
      current = undefined;
      resolve(code === 0 ? 'ok' : `failed (exit ${code ?? signal})`);
    });
  });
}

// ---------------------------------------------------------------------------------------

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null;

/** The value at a dotted `path` inside `value`, or undefined. */
const get = (value: unknown, path: string): unknown =>
  path.split('.').reduce<unknown>((at, key) => (isObject(at) ? at[key] : undefined), value);

/** The fields of `object` named in `keys` (space-separated) that it has. */
function pick(object: unknown, keys: string): Json | undefined {
  if (!isObject(object)) return undefined;
  return Object.fromEntries(keys.split(' ').flatMap((k) => (k in object ? [[k, object[k]]] : [])));
}

function latest(outcomes: Record<string, string>, startedAt: number) {
  const r: Record<string, unknown> = {};
  const sources: Record<string, Json> = {};
  for (const { key, results } of ALL) {
    const file = join(resultsDir, results);
    r[key] = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as unknown) : undefined;
    sources[key] = {
      file: `bench/results/${results}`,
      ran_in_this_command: outcomes[key] !== undefined,
      ...(outcomes[key] !== undefined && { outcome: outcomes[key] }),
      date: get(r[key], 'date') ?? null,
      command: get(r[key], 'command') ?? null,
    };
  }
  const { propagation: p, request_overhead: o, guard_replay: g, guard_request_cost: c } = r;
  const [goals, gatewayGoals] = [get(o, 'goals'), get(r.gateway, 'goals')];
  return {
    // Issue 6: revocation propagation and request overhead.
    ...pick(p, 'propagation_p50_ms propagation_p95_ms propagation_p99_ms propagation_max_ms'),
    ...pick(p, 'propagation_samples'),
    ...pick(o, 'noauth_rps guard_rps naive_rps noauth_p99_ms guard_p99_ms naive_p99_ms'),
    ...pick(o, 'guard_vs_noauth_rps_ratio guard_vs_naive_rps_ratio'),
    // Issue 10: what REDIS_DURABILITY costs a logout.
    ...pick(r.durability, 'durability_logout_p50_ms durability_logout_p99_ms'),
    ...pick(r.durability, 'replicas_vs_local_always_p50_ratio local_always_vs_everysec_p50_ratio'),
    // Issue 12: the gateway (cookie sessions, the proxy hop, phantom tokens).
    ...pick(r.gateway, 'gateway_propagation_p50_ms gateway_propagation_p99_ms'),
    ...pick(r.gateway, 'gateway_vs_direct_rps_ratio gateway_vs_direct_p99_overhead_ms'),
    ...pick(r.gateway, 'phantom_cached_vs_jwt_rps_ratio'),
    // Issue 13: the web console, in a real Chromium.
    ...pick(r.console, 'console_signout_visible_p50_ms console_signout_visible_p99_ms'),
    // Issue 14: federation (sign-out at the OpenID provider).
    ...pick(r.idp_logout, 'idp_logout_propagation_p50_ms idp_logout_propagation_p99_ms'),
    ...pick(r.ssf, 'ssf_push_p50_ms ssf_push_p99_ms ssf_events_per_s'),
    // Issue 15: the session service's CPU per refresh against a bare signing's.
    ...pick(r.session_service, 'refresh_cpu_vs_signing_ratio'),
    // Issue 15: propagation as API instances multiply, the guard during a revocation storm.
    ...pick(r.fan_out, 'propagation_by_instances propagation_by_instances_cluster'),
    ...pick(r.storm, 'guard_rps_during_storm_ratio'),
    // Issue 15: a new API instance ready behind 1,000,000 events, and its peak memory meanwhile.
    ...pick(g, 'replay_ready_ms replay_peak_rss_mib'),
    goals: {
      propagation: get(p, 'goal'),
      ...(isObject(goals) && goals),
      ...(isObject(gatewayGoals) && gatewayGoals),
      console_signout_visible: get(r.console, 'goal'),
      idp_logout_propagation: get(r.idp_logout, 'goal'),
      ssf_push: get(r.ssf, 'goals.ssf_push'),
      ssf_throughput: get(r.ssf, 'goals.ssf_throughput'),
      refresh_cpu_vs_signing_ratio: get(r.session_service, 'goals.refresh_cpu_vs_signing_ratio'),
      propagation_by_instances: get(r.fan_out, 'goal'),
      guard_rps_during_storm: get(r.storm, 'goal'),
      replay_ready: get(g, 'goals.replay_ready'),
      replay_peak_rss: get(g, 'goals.replay_peak_rss'),
    },
    charts: {
      propagation: 'bench/results/propagation.svg',
      propagation_by_instances: 'bench/results/fan-out.svg',
    },
    // The earlier benchmarks' headline figures, for docs/ALL.md; details in their files.
    earlier: {
      session_service: pick(
        r.session_service,
        'login_oidc_rps login_oidc_p99_ms refresh_rps refresh_p50_ms refresh_p99_ms ' +
          'bare_jose_sign_ops_per_s refresh_vs_bare_signing_ratio login_password_rps ' +
          'redis_bytes_per_session',
      ),
      publisher: pick(
        r.publisher,
        'outbox_to_topic_p50_ms outbox_to_topic_p95_ms outbox_to_topic_p99_ms ' +
          'outbox_to_topic_max_ms throughput_events_per_s',
      ),
      revocation_store: pick(
        r.revocation_store,
        'bytes_per_revoked_session check_ns_per_op entries',
      ),
      guard: (g ?? c) && {
        replay_events: get(g, 'replay.events'),
        replay_ready_ms: get(g, 'replay.ready_ms'),
        replay_events_per_s: get(g, 'replay.events_per_s'),
        replay_bytes_per_revoked_session: get(g, 'replay.bytes_per_revoked_session'),
        authenticate_cache_hit_ns: get(c, 'request.cases.hit_pool.ns_per_op'),
        authenticate_cache_miss_ns: get(c, 'request.cases.miss_new_tokens.ns_per_op'),
      },
    },
    informational: {
      propagation_per_instance_ms: get(p, 'per_instance_ms'),
      propagation_breakdown: get(p, 'breakdown'),
      request_overhead: get(o, 'informational'),
    },
    machine: machine(),
    command: RUN_COMMAND,
    date: new Date().toISOString(),
    duration_s: Math.round((Date.now() - startedAt) / 1000),
    sources,
  };
}

const startedAt = Date.now();
const outcomes: Record<string, string> = {};
for (const benchmark of ALL) {
  if (only && !only.includes(benchmark.key)) continue;
  if (interrupted) break;
  log(`── ${benchmark.file} ──`);
  const began = Date.now();
  const outcome = await runBenchmark(benchmark);
  outcomes[benchmark.key] = outcome;
  log(`${benchmark.file}: ${outcome} in ${Math.round((Date.now() - began) / 1000)} s`);
}
if (interrupted) process.exit(interrupted === 'SIGINT' ? 130 : 143);

const summary = latest(outcomes, startedAt);
const latestFile = writeResults('latest.json', summary);
const failed = Object.entries(outcomes).filter(([, outcome]) => outcome !== 'ok');
/** `N=2 … ms, N=4 … ms` from `{ "2": { p99_ms } … }`. */
const byInstances = (figures: unknown) =>
  isObject(figures)
    ? Object.entries(figures)
        .map(([count, at]) => `N=${count} ${String(get(at, 'p99_ms'))} ms`)
        .join(', ')
    : '-';
const show = (...keys: string[]) =>
  keys.map((k) => (k in summary ? String((summary as Json)[k]) : '-')).join(' / ');
process.stdout.write(
  [
    '',
    `All benchmarks (${RUN_COMMAND}), ${summary.duration_s} s`,
    `  propagation p50/p95/p99/max   ${show('propagation_p50_ms', 'propagation_p95_ms', 'propagation_p99_ms', 'propagation_max_ms')} ms`,
    `  GET /me req/s noauth/guard/naive  ${show('noauth_rps', 'guard_rps', 'naive_rps')}   p99 ${show('noauth_p99_ms', 'guard_p99_ms', 'naive_p99_ms')} ms`,
    `  guard/noauth ${show('guard_vs_noauth_rps_ratio')}, guard/naive ${show('guard_vs_naive_rps_ratio')}`,
    `  logout p50 by durability ${JSON.stringify((summary as Json).durability_logout_p50_ms ?? {})} ms`,
    `  gateway propagation p50/p99 ${show('gateway_propagation_p50_ms', 'gateway_propagation_p99_ms')} ms, gateway/direct ${show('gateway_vs_direct_rps_ratio')}, opaque/JWT ${show('phantom_cached_vs_jwt_rps_ratio')}`,
    `  console signed-out visible p50/p99 ${show('console_signout_visible_p50_ms', 'console_signout_visible_p99_ms')} ms`,
    `  provider sign-out → refused p50/p99 ${show('idp_logout_propagation_p50_ms', 'idp_logout_propagation_p99_ms')} ms`,
    `  SSF push p50/p99 ${show('ssf_push_p50_ms', 'ssf_push_p99_ms')} ms, ${show('ssf_events_per_s')} events/s to 10 receivers`,
    `  propagation p99 by API instances ${byInstances((summary as Json).propagation_by_instances)}`,
    `  guard req/s during a storm of 2,000 revocations/s / without ${show('guard_rps_during_storm_ratio')}`,
    ...failed.map(([key, outcome]) => `  ${key}: ${outcome}`),
    `Results: ${latestFile}; charts: ${Object.values(summary.charts).join(', ')}`,
    '',
  ].join('\n'),
);
process.exit(failed.length > 0 ? 1 : 0);
