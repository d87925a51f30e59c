// Benchmark: revocation propagation as the API instances multiply (issue 15). A system, as
// `npm run stack` wires it, on a single node (and, when asked, then as a cluster: three Kafka
// nodes, a Redis Cluster), each with 2 content-api instances, then 4, 8 and 16 (instances are
// added between the measurements, so exactly N run while N are measured); at each N, one
// revocation at a time as bench/propagation.ts does it: the logout answered → every one of the
// N instances refuses the token. Every instance is a consumer group of its own, so each reads
// every event. What it starts and measures: bench/README.md ("Fan-out"). Results in
// bench/results/fan-out.json, the chart of p99 against N in bench/results/fan-out.svg.
//
//   node --disable-warning=TimeoutNegativeWarning bench/fan-out.ts
//
// BENCH_FANOUT_REVOCATIONS (per N, default 400), BENCH_FANOUT_POLL_PAUSE_MS (default 5) and
// BENCH_FANOUT_TOPOLOGIES (default single; single,cluster adds the cluster series) override
// the defaults.
import { writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { build } from '../scripts/build.ts';
import { envInt } from '../scripts/lib/process.ts';
import { cpuBetween, cpuSnapshot, procRssMiB } from './lib/cpu.ts';
import {
  apisOf,
  breakdown,
  noAnomalies,
  observeArrivals,
  revokeOneAtATime,
} from './lib/propagation.ts';
import { refusalFigures } from './lib/refusals.ts';
import { envelope, median, printSummary, round, writeResults } from './lib/report.ts';
import { benchRun, log, root } from './lib/run.ts';
import { startCore, type Core } from './lib/stack.ts';
import { lineChart, textBars } from './lib/svg.ts';

const chartFile = join(root, 'bench', 'results', 'fan-out.svg');

type Topology = 'single' | 'cluster';
const TOPOLOGY_NAMES: Record<Topology, string> = {
  single: 'single node (one Kafka broker, one Redis)',
  cluster: 'cluster (3 Kafka nodes, Redis Cluster of 3 + 3)',
};

function topologiesFromEnv(): Topology[] {
  const raw = (process.env.BENCH_FANOUT_TOPOLOGIES ?? 'single').split(',');
  const names = raw.map((name) => name.trim()).filter((name) => name !== '');
  for (const name of names)
    if (name !== 'single' && name !== 'cluster')
      throw new Error(`BENCH_FANOUT_TOPOLOGIES: "${name}" is neither single nor cluster`);
  return names as Topology[];
}

/** What is measured; recorded with the results so runs can be compared. */
const parameters = {
  instance_counts: [2, 4, 8, 16],
  /** Measured revocations at each N. */
  revocations: envInt('BENCH_FANOUT_REVOCATIONS', 400, { min: 1 }),
  warmup_revocations: 20,
  api_service: 'content-api',
  /** Each a system of its own, one after the other (BENCH_FANOUT_TOPOLOGIES=single,cluster). */
  topologies: topologiesFromEnv(),
  revoked_with: 'POST /auth/logout (the session’s own access token)',
  checked_with: 'GET /me, one kept-alive connection per instance',
  /**
   * Between a reply and the next poll of the same instance. Back to back, 16 instances
   * polled at once would keep both cores busy with polls and measure that; paced, every N
   * is observed with the same resolution.
   */
  poll_pause_ms: envInt('BENCH_FANOUT_POLL_PAUSE_MS', 5),
  /** Idle time after each revocation, so the next one starts from a quiet system. */
  pause_ms: 5,
  /** Instances added at a time between the measurements. */
  starting_at_once: 2,
  goal: 'p99 at 16 instances <= 2 x p99 at 2 instances',
} as const;

const limits = {
  wholeRunMs:
    parameters.topologies.length *
    (240_000 + parameters.instance_counts.length * parameters.revocations * 400),
  perRevocationMs: 15_000,
  acceptedMs: 10_000,
  observerReadyMs: 30_000,
  pollPauseMs: parameters.poll_pause_ms,
};

const run = benchRun({ wholeRunMs: limits.wholeRunMs });

/**
 * Starts content-api instances until `count` run, `startingAtOnce` at a time (a burst of
 * starting NestJS apps on 2 cores would make each wait for the others); resolves once all
 * are ready.
 */
async function scaleTo(core: Core, count: number) {
  const began = Date.now();
  const before = core.system.instances(parameters.api_service).length;
  for (let running = before; running < count; running += parameters.starting_at_once) {
    run.checkRunning(`scaling to ${count} instances`);
    const batch = Math.min(parameters.starting_at_once, count - running);
    await Promise.all(
      Array.from({ length: batch }, (_, i) =>
        core.system.startApp(parameters.api_service, {
          label: `${parameters.api_service}-${running + i + 1}`,
        }),
      ),
    );
  }
  if (count > before)
    log(
      `${count - before} more ${parameters.api_service} instances ready in ${Date.now() - began} ms`,
    );
}

/** Propagation to every running instance, one revocation at a time, with the CPU it took. */
async function measureAt(
  core: Core,
  count: number,
  arrivals: Awaited<ReturnType<typeof observeArrivals>>,
) {
  const instances = core.system.instances(parameters.api_service);
  const apis = apisOf(core, parameters.api_service);
  const pids = {
    ...Object.fromEntries(instances.map((app) => [app.label, app.pid])),
    session_service: core.sessionService.pid,
    publisher: core.system.app('revocation-publisher').pid,
    kafka: core.kafka.pid,
    redis: core.redis.pid,
    bench: process.pid,
  };
  const anomalies = noAnomalies();
  const before = cpuSnapshot(pids);
  const { samples, elapsedS } = await revokeOneAtATime(
    run,
    core,
    apis,
    {
      warmup: parameters.warmup_revocations,
      revocations: parameters.revocations,
      pauseMs: parameters.pause_ms,
      tag: `${core.topic}-n${count}`,
    },
    anomalies,
    limits,
  );
  const cpu = cpuBetween(before, cpuSnapshot(pids), samples.length);
  await sleep(200); // the observer's last receipts
  for (const api of apis) api.agent.destroy();
  const figures = refusalFigures('', samples);
  const rss = instances.map((app) => procRssMiB(app.pid) ?? NaN);
  const instanceCores = instances.reduce((sum, app) => sum + (cpu[app.label]?.cores_busy ?? 0), 0);
  return {
    ...figures,
    breakdown: breakdown(samples, arrivals),
    cores_busy: {
      api_instances: round(instanceCores),
      ...Object.fromEntries(
        Object.entries(cpu).flatMap(([name, use]) =>
          typeof use === 'object' && !name.startsWith(parameters.api_service)
            ? [[name, use.cores_busy]]
            : [],
        ),
      ),
      all: cpu.all_cores_busy,
    },
    api_instance_rss_mib_median: round(median(rss), 1),
    duration_s: round(elapsedS, 1),
    anomalies,
  };
}

type Series = Record<string, Awaited<ReturnType<typeof measureAt>>>;

/** One topology: a system of its own (its own data folder), N growing; stopped after. */
async function series(topology: Topology): Promise<Series> {
  const topic = `bench-fan-out-${topology}-${Date.now().toString(36)}`;
  const [first] = parameters.instance_counts;
  log(`══ ${topology} ══`);
  const core = await startCore(run, {
    topic,
    topology,
    dataDir: join(run.dataDir, topology),
    apps: [parameters.api_service],
    instances: { [parameters.api_service]: first },
  });
  const arrivals = await observeArrivals(run, core, limits.observerReadyMs);
  const byCount: Series = {};
  for (const count of parameters.instance_counts) {
    await scaleTo(core, count);
    log(`── ${count} × ${parameters.api_service} (${topology}) ──`);
    byCount[count] = await measureAt(core, count, arrivals);
    log(`${count} instances: p50 ${byCount[count].p50_ms} ms, p99 ${byCount[count].p99_ms} ms`);
  }
  await core.system.stop(); // the next topology gets the cores to itself
  return byCount;
}

const p99Of = (byCount: Series | undefined) => (count: number) =>
  byCount === undefined ? null : (byCount[count]?.p99_ms ?? null);
const [fewest, , , most] = parameters.instance_counts;

/** `{ "2": { p50_ms, p99_ms }, … }`, the ratio of the p99s at most and fewest, the goal. */
function summary(byCount: Series) {
  const p99 = p99Of(byCount);
  return {
    by_instances: Object.fromEntries(
      parameters.instance_counts.map((count) => [
        String(count),
        { p50_ms: byCount[count]?.p50_ms ?? null, p99_ms: p99(count) },
      ]),
    ),
    ratio: round((p99(most) ?? NaN) / (p99(fewest) ?? NaN), 3),
    goal: {
      statement: parameters.goal,
      met: (p99(most) ?? Infinity) <= 2 * (p99(fewest) ?? -Infinity),
    },
  };
}

await run.main(async () => {
  await build();
  run.makeDataDir();
  const measured: Partial<Record<Topology, Series>> = {};
  for (const topology of parameters.topologies) measured[topology] = await series(topology);
  const single = measured.single && summary(measured.single);
  const cluster = measured.cluster && summary(measured.cluster);
  const results = {
    ...(single && {
      propagation_by_instances: single.by_instances,
      p99_most_vs_fewest_ratio: single.ratio,
      goal: single.goal,
    }),
    ...(cluster && {
      propagation_by_instances_cluster: cluster.by_instances,
      p99_most_vs_fewest_ratio_cluster: cluster.ratio,
      goal_cluster: cluster.goal,
    }),
    by_instances: measured.single,
    by_instances_cluster: measured.cluster,
    ...envelope({ kafka: true }),
    parameters,
  };
  const file = writeResults('fan-out.json', results);
  const { machine } = results;
  const p99 = p99Of(measured.single ?? measured.cluster);
  writeFileSync(
    chartFile,
    lineChart({
      title: `Revocation propagation p99 against API instances (${parameters.revocations} revocations at each N)`,
      subtitle: `logout answered → all N content-api instances refuse; ${machine.cpus} × ${machine.cpu_model}, Kafka ${results.kafka_version}, load ${machine.load_average_1_5_15m.join(' ')}; ${results.date.slice(0, 16).replace('T', ' ')} UTC`,
      xs: parameters.instance_counts,
      xLabel: 'API instances (each its own consumer group)',
      yLabel: 'p99 (ms)',
      series: parameters.topologies.map((topology) => ({
        name: TOPOLOGY_NAMES[topology],
        ys: parameters.instance_counts.map(p99Of(measured[topology])),
      })),
      limits: [
        {
          label: `goal: 2 × p99 at ${fewest} (${TOPOLOGY_NAMES[parameters.topologies[0] ?? 'single']})`,
          y: 2 * (p99(fewest) ?? 0),
        },
      ],
    }),
  );

  printSummary([
    `Fan-out: propagation to N ${parameters.api_service} instances, ${parameters.revocations} revocations at each N (load ${machine.load_average_1_5_15m.join(' ')})`,
    ...parameters.topologies.flatMap((topology) => {
      const byCount = measured[topology];
      const goal = summary(byCount ?? {});
      return [
        `  ${TOPOLOGY_NAMES[topology]}:`,
        ...parameters.instance_counts.map((count) => {
          const at = byCount?.[count];
          return `    N=${String(count).padStart(2)}  p50 ${at?.p50_ms} ms   p99 ${at?.p99_ms} ms   max ${at?.max_ms} ms   cores busy ${at?.cores_busy.all} (instances ${at?.cores_busy.api_instances})   RSS ${at?.api_instance_rss_mib_median} MiB/instance`;
        }),
        `    p99 against N:`,
        ...textBars(
          parameters.instance_counts.map((count) => ({
            label: `N=${count}`,
            value: p99Of(byCount)(count),
          })),
        ).map((line) => `      ${line}`),
        `    goal p99(${most}) <= 2 × p99(${fewest}): ${goal.goal.met ? 'met' : 'NOT met'} (ratio ${goal.ratio})`,
      ];
    }),
    `Results: ${file}, chart: ${relative(root, chartFile)}`,
  ]);
});
