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
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Agent } from 'node:http';
import { build } from '../scripts/build.ts';
import { envInt } from '../scripts/lib/process.ts';
import { builtLib } from './lib/built.ts';
import { bearer, keepAliveAgent } from './lib/http.ts';
import { acceptedEverywhere, refusalFigures, refusedEverywhere } from './lib/refusals.ts';
import {
  clock,
  distribution,
  envelope,
  formatMs,
  printSummary,
  round,
  writeResults,
} from './lib/report.ts';
import { benchRun, log, root } from './lib/run.ts';
import { logOut, openSessions, startCore, type Core, type Session } from './lib/stack.ts';
import { latencyChart } from './lib/svg.ts';
import { observeTopic } from './lib/topic.ts';

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

// ---------------------------------------------------------------------------------------
// An observer on the topic: when each session's event arrived (for the breakdown only).

const arrivals = new Map<string, { receivedAt: number; sentAt: number }>();

function startObserver(core: Core) {
  const contracts = builtLib('contracts');
  const { brokers } = core.kafka;
  const options = {
    brokers,
    topic: core.topic,
    fromBeginning: false,
    readyMs: limits.observerReadyMs,
  };
  return observeTopic(run, options, (message) => {
    const receivedAt = clock();
    try {
      const decoded = contracts.decodeMessage(message);
      if (decoded.kind === 'heartbeat') return;
      const sessionId = decoded.event.events[contracts.SESSION_REVOKED].subject.session?.id;
      if (sessionId) arrivals.set(sessionId, { receivedAt, sentAt: Number(message.timestamp) });
    } catch {
      // not a message of the contract: not one of ours
    }
  });
}

// ---------------------------------------------------------------------------------------
// One revocation.

type Anomalies = { no_invalid_token_challenge: number; other_status: Record<number, number> };
type Api = { label: string; url: string; agent: Agent };

async function revokeOnce(core: Core, apis: Api[], session: Session, anomalies: Anomalies) {
  const { accessToken, sessionId } = session;
  const headers = bearer(accessToken);
  const points = apis.map(({ label, url, agent }) => ({ label, url: `${url}/me`, headers, agent }));
  await acceptedEverywhere(
    points.map((point) => ({ ...point, sessionId })),
    limits.acceptedMs,
  );
  const sentAt = clock();
  await logOut(core.sessionService.url, session.accessToken);
  const t0 = clock();
  const sample = await refusedEverywhere(
    points,
    { sentAt, t0 },
    limits.perRevocationMs,
    anomalies.other_status,
  );
  for (const reply of sample.replies)
    if (!/error="invalid_token"/.test(reply.headers['www-authenticate'] ?? ''))
      anomalies.no_invalid_token_challenge += 1;
  return { ...sample, sessionId: session.sessionId };
}

// ---------------------------------------------------------------------------------------

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
  const apis: Api[] = core.system
    .instances(parameters.api_service)
    .map(({ label, url }) => ({ label, url, agent: keepAliveAgent(1) }));
  await startObserver(core);

  const anomalies: Anomalies = { no_invalid_token_challenge: 0, other_status: {} };
  const samples: Awaited<ReturnType<typeof revokeOnce>>[] = [];
  const total = parameters.warmup_revocations + parameters.revocations;
  log(
    `${parameters.warmup_revocations} warm-up revocations, then ${parameters.revocations} measured, one at a time`,
  );
  const startedAt = performance.now();
  for (let i = 0; i < total; i += 1) {
    run.checkRunning('the revocations');
    const [session] = await openSessions(core, 1, { tag: `${topic}-${i}` });
    if (!session) throw new Error('no session opened');
    const sample = await revokeOnce(core, apis, session, anomalies);
    if (i >= parameters.warmup_revocations) samples.push(sample);
    if ((i + 1) % 250 === 0) log(`${i + 1} of ${total}`);
    await sleep(parameters.pause_ms);
  }
  const elapsedS = (performance.now() - startedAt) / 1000;
  await sleep(200); // the observer's last receipts
  for (const api of apis) api.agent.destroy();

  const figures = refusalFigures('propagation_', samples);
  const totals = samples.map((s) => s.total);
  const dist = distribution(totals);
  // Breakdown from the observer: logout answer → on the topic → the last instance rejects.
  const observed = samples.flatMap((s) => {
    const arrival = arrivals.get(s.sessionId);
    return arrival ? [{ s, arrival }] : [];
  });
  const results = {
    ...figures,
    goal: {
      statement:
        'p50 <= 15 ms and p99 <= 50 ms from the logout answer to the last instance rejecting',
      met: (dist.p50 ?? Infinity) <= 15 && (dist.p99 ?? Infinity) <= 50,
    },
    // Where the time goes, from the observer on the topic (same clock; the message timestamp is
    // the publisher's, in whole ms). Relative to the logout answer, so a step that happens
    // before the answer reaches this process is negative.
    breakdown: {
      samples: observed.length,
      logout_answer_to_publisher_send_ms: distribution(
        observed.map(({ s, arrival }) => arrival.sentAt - s.t0),
      ),
      logout_answer_to_observer_receipt_ms: distribution(
        observed.map(({ s, arrival }) => arrival.receivedAt - s.t0),
      ),
      observer_receipt_to_last_rejection_ms: distribution(
        observed.map(({ s, arrival }) => s.t1 - arrival.receivedAt),
      ),
    },
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
