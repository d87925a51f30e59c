// autocannon as a process of its own: the load generator does not share an event loop (or a
// garbage collector) with the benchmark's bookkeeping, and its CPU time can be read apart.
// Variants are compared side by side, in rounds, in one run: only such ratios compare well.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { envInt } from '../../scripts/lib/process.ts';
import { cpuBetween, cpuSnapshot } from './cpu.ts';
import type { ChildReply, MeasureRequest } from './load-generator-child.ts';
import { median, round } from './report.ts';
import { log, type BenchRun } from './run.ts';

const childFile = new URL('./load-generator-child.ts', import.meta.url);

/** What the load is sent to: an app's route, with one set of headers per request, in turn. */
export interface Target {
  key: string;
  url: string;
  path: string;
  headers: Record<string, string>[];
  /** The process whose CPU time is reported as `app`. */
  pid: number | undefined;
  /**
   * What holds around every run against this target (e.g. a storm of revocations): `begin`
   * before the load starts, `end` once it stopped.
   */
  condition?: { begin(): Promise<void>; end(): Promise<void> };
}

export type LoadGenerator = ReturnType<typeof startLoadGenerator>;
export type Run = Awaited<ReturnType<LoadGenerator['measure']>>;

/**
 * Forks the load generator (tracked by `run`). Its runs report the CPU time of the target's
 * app, of the load generator and of `others` (Redis, Kafka…) during each run.
 */
export function startLoadGenerator(run: BenchRun, others: Record<string, number | undefined>) {
  const child = fork(childFile, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exit = run.trackChild('load generator', child);
  // One run at a time: the next message is the answer, unless the child exits first.
  const ask = (request: MeasureRequest) => {
    child.send(request);
    return Promise.race([
      once(child, 'message').then(([reply]: ChildReply[]) => {
        if (reply?.ok) return reply.result;
        throw new Error(`load generator: ${reply?.error ?? 'no answer'}`);
      }),
      exit.then(([code, signal]) => {
        throw new Error(`load generator exited (code ${code}, signal ${signal})`);
      }),
    ]);
  };
  return {
    /** One autocannon run against `target`; its counts, latency percentiles (ms) and CPU. */
    async measure(target: Target, durationS: number, connections: number) {
      const pids = { app: target.pid, load_generator: child.pid, ...others };
      const before = cpuSnapshot(pids);
      const { url, path, headers } = target;
      const result = await ask({ url, path, headers, connections, durationS });
      const cpu = cpuBetween(before, cpuSnapshot(pids), result.requests_2xx);
      run.checkRunning(`the run against ${target.key}`);
      return {
        rps: round(result.requests_2xx / result.duration_s),
        p50_ms: result.latency_ms.p50,
        p99_ms: result.latency_ms.p99,
        max_ms: result.latency_ms.max,
        ...result,
        cpu,
      };
    },
  };
}

/** How variants are run side by side: BENCH_* override the defaults; recorded with results. */
export const roundsFromEnv = () => ({
  rounds: envInt('BENCH_ROUNDS', 3, { min: 1 }),
  duration_s: envInt('BENCH_DURATION_S', 10, { min: 1 }),
  warmup_s: envInt('BENCH_WARMUP_S', 3, { min: 1 }),
  connections: envInt('BENCH_CONNECTIONS', 16, { min: 1 }),
  pause_between_runs_ms: 1_000,
  load_generator:
    'autocannon 9 in a child process: HTTP/1.1 keep-alive, no pipelining, one request in flight per connection',
});
export type Rounds = ReturnType<typeof roundsFromEnv>;

/**
 * A warm-up run of each target, then `rounds` rounds, each running every target once in an
 * order that rotates from round to round (no target always goes first, or always follows the
 * same one). Per target: the medians over the rounds, every round, and the warm-up.
 */
export async function sideBySide(loadGenerator: LoadGenerator, targets: Target[], p: Rounds) {
  const warmups = new Map<string, Run>();
  for (const target of targets) {
    log(`warm-up: ${target.key}, ${p.warmup_s} s`);
    await target.condition?.begin();
    warmups.set(target.key, await loadGenerator.measure(target, p.warmup_s, p.connections));
    await target.condition?.end();
    await sleep(p.pause_between_runs_ms);
  }
  const rounds = new Map(targets.map((t) => [t.key, [] as (Run & { round: number })[]]));
  for (let r = 0; r < p.rounds; r += 1) {
    const order = targets.map((_, i) => targets[(i + r) % targets.length] as Target);
    for (const target of order) {
      await target.condition?.begin();
      const result = await loadGenerator.measure(target, p.duration_s, p.connections);
      await target.condition?.end();
      rounds.get(target.key)?.push({ round: r + 1, ...result });
      log(
        `round ${r + 1}/${p.rounds} ${target.key.padEnd(20)} ${String(result.rps).padStart(9)} req/s   p99 ${String(result.p99_ms)} ms${result.non_2xx ? `   non-2xx ${result.non_2xx}` : ''}`,
      );
      await sleep(p.pause_between_runs_ms);
    }
  }
  const summaries = new Map(targets.map((t) => [t.key, summarize(rounds, warmups, t.key)]));
  /** The figures of the target `key`. */
  return (key: string) => {
    const summary = summaries.get(key);
    if (!summary) throw new Error(`no target ${key}`);
    return summary;
  };
}

function summarize(
  all: Map<string, (Run & { round: number })[]>,
  warmups: Map<string, Run>,
  key: string,
) {
  const rounds = all.get(key) ?? [];
  const med = (figure: (r: Run) => number | null | undefined, digits = 2) =>
    round(median(rounds.map((r) => figure(r) ?? NaN)), digits);
  return {
    rps: med((r) => r.rps),
    p50_ms: med((r) => r.p50_ms),
    p99_ms: med((r) => r.p99_ms),
    app_cpu_ms_per_request: med((r) => r.cpu.app?.cpu_ms_per_request, 4),
    non_2xx: rounds.reduce((sum, r) => sum + r.non_2xx + r.errors, 0),
    rounds,
    warmup: warmups.get(key),
  };
}
