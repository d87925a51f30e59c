// `npm run bench`: every benchmark, one after the other (each starts and stops what it
// measures), then bench/results/latest.json, the figures of all of them in one place.
//
//   node --disable-warning=TimeoutNegativeWarning bench/all.mjs [--only propagation,request_overhead]
//
// With --only, the other benchmarks are not run; latest.json takes their figures from their
// last results file, and says so (`sources.*.ran_in_this_command: false`, with its date).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { machine } from './lib/report.mjs';
import { log, root } from './lib/run.mjs';

const RUN_COMMAND = process.env.npm_lifecycle_event
  ? `npm run ${process.env.npm_lifecycle_event}`
  : ['node', ...process.execArgv, relative(root, process.argv[1]), ...process.argv.slice(2)].join(
      ' ',
    );

const quiet = '--disable-warning=TimeoutNegativeWarning';
/** Every benchmark, quickest first; each stops by itself (its own watchdog) within `boundS`. */
const BENCHMARKS = [
  { key: 'revocation_store', file: 'revocation-store.mjs', flags: ['--expose-gc'], boundS: 120 },
  { key: 'session_service', file: 'session-service.mjs', flags: [quiet], boundS: 240 },
  { key: 'durability', file: 'durability.mjs', flags: [quiet], boundS: 280 },
  { key: 'publisher', file: 'publisher-outbox-to-topic.mjs', flags: [quiet], boundS: 300 },
  { key: 'guard', file: 'guard.mjs', flags: ['--expose-gc', quiet], boundS: 390 },
  { key: 'propagation', file: 'propagation.mjs', flags: [quiet], boundS: 330 },
  { key: 'request_overhead', file: 'request-overhead.mjs', flags: [quiet], boundS: 600 },
].filter((benchmark) => existsSync(join(root, 'bench', benchmark.file)));
const RESULTS = {
  revocation_store: 'revocation-store.json',
  session_service: 'session-service.json',
  durability: 'durability.json',
  publisher: 'publisher.json',
  guard: 'guard.json',
  propagation: 'propagation.json',
  request_overhead: 'request-overhead.json',
};
const resultsDir = join(root, 'bench', 'results');
const latestFile = join(resultsDir, 'latest.json');

const onlyAt = process.argv.indexOf('--only');
const only = onlyAt === -1 ? undefined : (process.argv[onlyAt + 1] ?? '').split(',');
for (const key of only ?? [])
  if (!BENCHMARKS.some((b) => b.key === key))
    throw new Error(`--only: no benchmark "${key}" (${BENCHMARKS.map((b) => b.key).join(', ')})`);

// ---------------------------------------------------------------------------------------
// One child at a time; a signal to this process goes to it, and it stops what it started.

let current;
let interrupted;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    interrupted = signal;
    if (current) current.kill(signal);
    else process.exit(signal === 'SIGINT' ? 130 : 143);
  });
}

process.once('exit', () => current?.kill('SIGTERM'));

function runBenchmark({ file, flags, boundS }) {
  return new Promise((resolve) => {
    const env = { ...process.env, BENCH_INVOKED_BY: RUN_COMMAND };
    delete env.npm_lifecycle_event;
    // A process group of its own: Ctrl-C reaches the child once, from here, so it stops what
    // it started in order instead of taking a second signal as "stop waiting".
    current = spawn(process.execPath, [...flags, join('bench', file)], {
      cwd: root,
      env,
      stdio: 'inherit',
      detached: true,
    });
    // The child's own watchdog fires first; this one only if the child itself hangs.
    const watchdog = setTimeout(
      () => {
        log(`${file} still running after ${boundS + 60} s; stopping it`);
        current?.kill('SIGTERM');
        setTimeout(() => current?.kill('SIGKILL'), 30_000).unref();
      },
      (boundS + 60) * 1000,
    );
    current.once('exit', (code, signal) => {
      clearTimeout(watchdog);
      current = undefined;
      resolve(code === 0 ? 'ok' : `failed (exit ${code ?? signal})`);
    });
  });
}

// ---------------------------------------------------------------------------------------

function readResults(key) {
  const file = join(resultsDir, RESULTS[key]);
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, 'utf8'));
}

function pick(object, keys) {
  if (!object) return undefined;
  return Object.fromEntries(keys.filter((k) => object[k] !== undefined).map((k) => [k, object[k]]));
}

function latest(outcomes, startedAt) {
  const r = Object.fromEntries(Object.keys(RESULTS).map((key) => [key, readResults(key)]));
  const sources = Object.fromEntries(
    Object.keys(RESULTS).map((key) => [
      key,
      {
        file: `bench/results/${RESULTS[key]}`,
        ran_in_this_command: outcomes[key] !== undefined,
        ...(outcomes[key] !== undefined && { outcome: outcomes[key] }),
        date: r[key]?.date ?? null,
        command: r[key]?.command ?? null,
      },
    ]),
  );
  const p = r.propagation;
  const o = r.request_overhead;
  return {
    // Issue 6: revocation propagation and request overhead.
    ...pick(p, [
      'propagation_p50_ms',
      'propagation_p95_ms',
      'propagation_p99_ms',
      'propagation_max_ms',
      'propagation_samples',
    ]),
    ...pick(o, [
      'noauth_rps',
      'guard_rps',
      'naive_rps',
      'noauth_p99_ms',
      'guard_p99_ms',
      'naive_p99_ms',
      'guard_vs_noauth_rps_ratio',
      'guard_vs_naive_rps_ratio',
    ]),
    // Issue 10: what REDIS_DURABILITY costs a logout.
    ...pick(r.durability, [
      'durability_logout_p50_ms',
      'durability_logout_p99_ms',
      'replicas_vs_local_always_p50_ratio',
      'local_always_vs_everysec_p50_ratio',
    ]),
    goals: {
      propagation: p?.goal,
      ...o?.goals,
    },
    charts: { propagation: 'bench/results/propagation.svg' },
    // The earlier benchmarks' headline figures, for docs/BENCHMARKS.md; details in their files.
    earlier: {
      session_service: pick(r.session_service, [
        'login_oidc_rps',
        'login_oidc_p99_ms',
        'refresh_rps',
        'refresh_p50_ms',
        'refresh_p99_ms',
        'bare_jose_sign_ops_per_s',
        'refresh_vs_bare_signing_ratio',
        'login_password_rps',
      ]),
      publisher: pick(r.publisher, [
        'outbox_to_topic_p50_ms',
        'outbox_to_topic_p95_ms',
        'outbox_to_topic_p99_ms',
        'outbox_to_topic_max_ms',
        'throughput_events_per_s',
      ]),
      revocation_store: pick(r.revocation_store, [
        'bytes_per_revoked_session',
        'check_ns_per_op',
        'entries',
      ]),
      guard: r.guard && {
        replay_events: r.guard.replay?.events,
        replay_ready_ms: r.guard.replay?.ready_ms,
        replay_events_per_s: r.guard.replay?.events_per_s,
        replay_bytes_per_revoked_session: r.guard.replay?.bytes_per_revoked_session,
        authenticate_cache_hit_ns: r.guard.request?.cases?.hit_pool?.ns_per_op,
        authenticate_cache_miss_ns: r.guard.request?.cases?.miss_new_tokens?.ns_per_op,
      },
    },
    informational: {
      propagation_per_instance_ms: p?.per_instance_ms,
      propagation_breakdown: p?.breakdown,
      request_overhead: o?.informational,
    },
    machine: machine(),
    command: RUN_COMMAND,
    date: new Date().toISOString(),
    duration_s: Math.round((Date.now() - startedAt) / 1000),
    sources,
  };
}

const startedAt = Date.now();
const outcomes = {};
for (const benchmark of BENCHMARKS) {
  if (only && !only.includes(benchmark.key)) continue;
  if (interrupted) break;
  log(`── ${benchmark.file} ──`);
  const began = Date.now();
  outcomes[benchmark.key] = await runBenchmark(benchmark);
  log(
    `${benchmark.file}: ${outcomes[benchmark.key]} in ${Math.round((Date.now() - began) / 1000)} s`,
  );
}
if (interrupted) process.exit(interrupted === 'SIGINT' ? 130 : 143);

mkdirSync(resultsDir, { recursive: true });
const summary = latest(outcomes, startedAt);
writeFileSync(latestFile, `${JSON.stringify(summary, null, 2)}\n`);
const failed = Object.entries(outcomes).filter(([, outcome]) => outcome !== 'ok');
const show = (value) => (value === undefined ? '-' : String(value));
process.stdout.write(
  [
    '',
    `All benchmarks (${RUN_COMMAND}), ${summary.duration_s} s`,
    `  propagation p50/p95/p99/max   ${['propagation_p50_ms', 'propagation_p95_ms', 'propagation_p99_ms', 'propagation_max_ms'].map((k) => show(summary[k])).join(' / ')} ms`,
    `  GET /me req/s noauth/guard/naive  ${['noauth_rps', 'guard_rps', 'naive_rps'].map((k) => show(summary[k])).join(' / ')}   p99 ${['noauth_p99_ms', 'guard_p99_ms', 'naive_p99_ms'].map((k) => show(summary[k])).join(' / ')} ms`,
    `  guard/noauth ${show(summary.guard_vs_noauth_rps_ratio)}, guard/naive ${show(summary.guard_vs_naive_rps_ratio)}`,
    `  logout p50 by durability ${JSON.stringify(summary.durability_logout_p50_ms ?? {})} ms`,
    ...failed.map(([key, outcome]) => `  ${key}: ${outcome}`),
    `Results: ${relative(root, latestFile)}; chart: ${summary.charts.propagation}`,
    '',
  ].join('\n'),
);
process.exit(failed.length > 0 ? 1 : 0);
