// Benchmark: what REDIS_DURABILITY costs a logout, side by side in one run.
//
// Three setups, each its own Redis (and replica) and session-service process (from dist/),
// measured in turns (A B C A B C…), so the machine's noise falls on all of them alike:
//   local_everysec   REDIS_DURABILITY=local,    Redis appendfsync everysec
//   local_always     REDIS_DURABILITY=local,    Redis appendfsync always (stack and compose)
//   replicas         REDIS_DURABILITY=replicas, appendfsync always, one replica (WAIT 1)
// On Redis < 7.2 (Debian 12's 7.0) `local` cannot wait for the fsync (no WAITAOF): it is as
// durable as appendfsync makes it, which is what the first two setups show the cost of.
// Each round: sessions are opened by OIDC sign-in (not measured), then logged out,
// `concurrency` at a time; the latency of each POST /auth/logout (204) is recorded.
// Results go to bench/results/durability.json.
//
//   node --disable-warning=TimeoutNegativeWarning bench/durability.ts
//
// BENCH_ROUNDS, BENCH_LOGOUTS and BENCH_CONCURRENCY override the defaults (3, 1500, 16).
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TestOidcIssuer } from '@app/testing';
import { build } from '../scripts/build.ts';
import { envInt } from '../scripts/lib/process.ts';
import { startRedis, type AppendFsync } from '../scripts/redis/redis.ts';
import type { AppHandle } from '../scripts/system.ts';
import { builtLib } from './lib/built.ts';
import { fetchPost } from './lib/http.ts';
import {
  distribution,
  envelope,
  msFields,
  printSummary,
  round,
  writeResults,
} from './lib/report.ts';
import { benchRun, inParallel, log, Stage } from './lib/run.ts';
import { openSessions, startSessionService } from './lib/stack.ts';

const parameters = {
  rounds: envInt('BENCH_ROUNDS', 3, { min: 1 }),
  logouts_per_round: envInt('BENCH_LOGOUTS', 1_500, { min: 1 }),
  concurrency: envInt('BENCH_CONCURRENCY', 16, { min: 1 }),
};

interface Setup {
  durability: 'local' | 'replicas';
  appendfsync: AppendFsync;
  replica: boolean;
}
const SETUPS = {
  local_everysec: { durability: 'local', appendfsync: 'everysec', replica: false },
  local_always: { durability: 'local', appendfsync: 'always', replica: false },
  replicas: { durability: 'replicas', appendfsync: 'always', replica: true },
} satisfies Record<string, Setup>;
type SetupName = keyof typeof SETUPS;
const NAMES = Object.keys(SETUPS) as SetupName[];
const perSetup = <T>(value: (name: SetupName) => T) =>
  Object.fromEntries(NAMES.map((name) => [name, value(name)])) as Record<SetupName, T>;

const run = benchRun({ wholeRunMs: 280_000 });

async function startSetup(name: SetupName, setup: Setup, dataDir: string, issuer: TestOidcIssuer) {
  const dir = join(dataDir, name);
  const redis = (role: string, args: string[] = []) =>
    startRedis({ dataDir: join(dir, role), appendfsync: setup.appendfsync, args, log }).then(
      (handle) => run.track(Stage.infrastructure, `${name} redis ${role}`, handle),
    );
  const primary = await redis('primary');
  if (setup.replica) await redis('replica', ['--replicaof', '127.0.0.1', String(primary.port)]);
  const label = `session-${name}`;
  const logFile = join(dir, 'session-service.log');
  const env = { REDIS_DURABILITY: setup.durability };
  return startSessionService(run, { label, issuer, redisUrl: primary.url, logFile, env });
}

/** Opens `count` sessions (a user each), then logs them out; the logouts' latencies. */
async function openThenLogOut(service: AppHandle, issuer: TestOidcIssuer, tag: string) {
  const { logouts_per_round: count, concurrency } = parameters;
  const sessions = await openSessions({ issuer, sessionService: service }, count, {
    tag,
    inFlight: concurrency,
  });
  const latencies: number[] = [];
  const errors: Record<string, number> = {};
  const startedAt = performance.now();
  await inParallel(sessions.length, concurrency, async (i) => {
    if (run.aborted !== undefined) return;
    const t0 = performance.now();
    const { status } = await fetchPost(`${service.url}/auth/logout`, {
      token: sessions[i]?.accessToken,
    });
    if (status === 204) latencies.push(performance.now() - t0);
    else errors[status] = (errors[status] ?? 0) + 1;
  });
  return { latencies, errors, seconds: (performance.now() - startedAt) / 1000 };
}

async function main(): Promise<void> {
  await build();
  const dataDir = run.makeDataDir();
  const issuer = await builtLib('testing').startOidcIssuer();
  run.track(Stage.client, 'oidc issuer', issuer);

  const services = {} as Record<SetupName, AppHandle>;
  for (const name of NAMES) services[name] = await startSetup(name, SETUPS[name], dataDir, issuer);

  const samples = perSetup((): number[] => []);
  const rates = perSetup((): number[] => []);
  const errors = perSetup((): Record<string, number> => ({}));
  for (let roundNo = 1; roundNo <= parameters.rounds; roundNo += 1) {
    for (const name of NAMES) {
      run.checkRunning(name);
      const result = await openThenLogOut(services[name], issuer, `${name}-${roundNo}`);
      samples[name].push(...result.latencies);
      rates[name].push(result.latencies.length / result.seconds);
      for (const [status, count] of Object.entries(result.errors))
        errors[name][status] = (errors[name][status] ?? 0) + count;
      log(
        `round ${roundNo} ${name}: ${result.latencies.length} logouts, p50 ${distribution(result.latencies).p50} ms`,
      );
      await sleep(200);
    }
  }

  const setups = perSetup((name) => {
    return {
      ...SETUPS[name],
      logouts: samples[name].length,
      ...msFields(distribution(samples[name])),
      logouts_per_s_per_round: rates[name].map((r) => round(r)),
      errors: errors[name],
    };
  });
  const ratio = (a: SetupName, b: SetupName) =>
    round((setups[a].p50_ms ?? NaN) / (setups[b].p50_ms ?? NaN));
  const results = {
    benchmark: 'durability',
    description:
      'POST /auth/logout latency per REDIS_DURABILITY setup, measured in turns in one run (Redis 7.0: no WAITAOF)',
    durability_logout_p50_ms: perSetup((name) => setups[name].p50_ms),
    durability_logout_p99_ms: perSetup((name) => setups[name].p99_ms),
    replicas_vs_local_always_p50_ratio: ratio('replicas', 'local_always'),
    local_always_vs_everysec_p50_ratio: ratio('local_always', 'local_everysec'),
    setups,
    parameters,
    ...envelope(),
  };
  const file = writeResults('durability.json', results);
  printSummary([
    `Logout latency by REDIS_DURABILITY (${parameters.rounds} rounds × ${parameters.logouts_per_round}, ${parameters.concurrency} in flight)`,
    ...NAMES.map(
      (name) =>
        `  ${name.padEnd(16)} p50 ${setups[name].p50_ms} ms  p99 ${setups[name].p99_ms} ms  (${setups[name].logouts} logouts)`,
    ),
    `  replicas / local_always p50: ${results.replicas_vs_local_always_p50_ratio}`,
    `Results: ${file}`,
  ]);
}

await run.main(main);
