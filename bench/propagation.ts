// Benchmark: how long after a logout every API instance rejects the session's token, one
// revocation at a time, against three content-api instances of the system `npm run stack`
// starts. What it starts and measures: bench/README.md ("Revocation propagation"). Results in
// bench/results/propagation.json, the chart in bench/results/propagation.svg.
//
//   node --disable-warning=TimeoutNegativeWarning bench/propagation.ts   (npm run bench:propagation)
//
// BENCH_REVOCATIONS overrides the number of measured revocations (default 1,000).
import { writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { build } from '../scripts/build.ts';
import { envInt } from '../scripts/lib/process.ts';
import {
  apisOf,
  breakdown,
  noAnomalies,
  observeArrivals,
  revokeOneAtATime,
} from './lib/propagation.ts';
import { refusalFigures } from './lib/refusals.ts';
import {
  distribution,
  envelope,
  formatMs,
  printSummary,
  round,
  writeResults,
} from './lib/report.ts';
import { benchRun, root } from './lib/run.ts';
import { startCore } from './lib/stack.ts';
import { latencyChart } from './lib/svg.ts';

const chartFile = join(root, 'bench', 'results', 'propagation.svg');

/** What is measured; recorded with the results so runs can be compared. */
const parameters = {
  revocations: envInt('BENCH_REVOCATIONS', 1_000, { min: 1 }),
  warmup_revocations: 50,
  api_service: 'content-api',
  api_instances: 3,
  revoked_with: 'POST /auth/logout (the session’s own access token)',
  checked_with: 'GET /me, one kept-alive connection per instance, polled back to back',
  /** Idle time after each revocation, so the next one starts from a quiet system. */
  pause_ms: 5,
  /** A KafkaJS consumer in this process timestamps each event's arrival on the topic. */
  observer_consumer: true,
} as const;

/** Every wait is bounded; the watchdog leaves room for the shutdown within ~5 minutes. */
const limits = {
  wholeRunMs: 150_000 + parameters.revocations * 120,
  /** A revocation that some instance still accepts after this long fails the run. */
  perRevocationMs: 15_000,
  acceptedMs: 10_000,
  observerReadyMs: 30_000,
};

const run = benchRun({ wholeRunMs: limits.wholeRunMs });

await run.main(async () => {
  await build();
  run.makeDataDir();
  const topic = `bench-revocations-${Date.now().toString(36)}`;
  const core = await startCore(run, {
    topic,
    apps: [parameters.api_service],
    instances: { [parameters.api_service]: parameters.api_instances },
  });
  // GET /me at every instance, each on a kept-alive connection of its own.
  const apis = apisOf(core, parameters.api_service);
  const arrivals = await observeArrivals(run, core, limits.observerReadyMs);

  const anomalies = noAnomalies();
  const { samples, elapsedS } = await revokeOneAtATime(
    run,
    core,
    apis,
    {
      warmup: parameters.warmup_revocations,
      revocations: parameters.revocations,
      pauseMs: parameters.pause_ms,
      tag: topic,
    },
    anomalies,
    limits,
  );
  await sleep(200); // the observer's last receipts
  for (const api of apis) api.agent.destroy();

  const figures = refusalFigures('propagation_', samples);
  const totals = samples.map((s) => s.total);
  const dist = distribution(totals);
  const results = {
    ...figures,
    goal: {
      statement:
        'p50 <= 15 ms and p99 <= 50 ms from the logout answer to the last instance rejecting',
      met: (dist.p50 ?? Infinity) <= 15 && (dist.p99 ?? Infinity) <= 50,
    },
    // Where the time goes, from the observer on the topic.
    breakdown: breakdown(samples, arrivals),
    duration_s: round(elapsedS, 1),
    ...envelope({ kafka: true }),
    parameters,
    anomalies,
  };
  const file = writeResults('propagation.json', results);
  writeFileSync(
    chartFile,
    latencyChart({
      title: `Revocation propagation: logout answered → all ${parameters.api_instances} API instances reject (${samples.length.toLocaleString('en-US')} revocations)`,
      subtitle: `${results.machine.cpus} × ${results.machine.cpu_model}, Node ${results.machine.node}, Kafka ${results.kafka_version}; ${results.date.slice(0, 16).replace('T', ' ')} UTC`,
      values: totals,
      markers: { p50: dist.p50, p95: dist.p95, p99: dist.p99 },
    }),
  );

  printSummary([
    `Revocation propagation, ${samples.length} revocations one at a time, ${parameters.api_instances} × ${parameters.api_service} (load ${results.machine.load_average_1_5_15m.join(' ')})`,
    `  logout answered → last instance rejects:  ${formatMs(dist)}`,
    `  each instance:                            ${formatMs(results.per_instance_ms)}`,
    `  goal p50 <= 15 ms, p99 <= 50 ms: ${results.goal.met ? 'met' : 'NOT met'}`,
    `Results: ${file}, chart: ${relative(root, chartFile)}`,
  ]);
});
