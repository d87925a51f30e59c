// Benchmark: how long after a logout every API instance rejects the session's token.
//
// Starts the system as `npm run stack` does, on free loopback ports with data under
// .data/bench-*: Kafka, Redis, the session service, the publisher and three instances of
// content-api, each app its own process; plus a local OpenID Connect issuer, so sessions are
// opened without scrypt. Then, one revocation at a time: open a session, wait until all three
// instances answer 200 on GET /me with its token, POST /auth/logout with it; t0 is when the
// 204 arrives. Each instance is then polled back to back (GET /me on a kept-alive connection of
// its own, the three concurrently) until it answers 401; the sample is the time from t0 to the
// last of the three 401s. Results go to bench/results/propagation.json and the chart to
// bench/results/propagation.svg. See bench/README.md.
//
//   node --disable-warning=TimeoutNegativeWarning bench/propagation.ts   (npm run bench:propagation)
//
// BENCH_REVOCATIONS overrides the number of measured revocations (default 1,000).
import { writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Agent } from 'node:http';
import { Kafka, logLevel } from 'kafkajs';
import { build } from '../scripts/build.ts';
import { envInt, StopWaiting, waitFor } from '../scripts/lib/process.ts';
import { builtLib } from './lib/built.ts';
import { keepAliveAgent, post, request } from './lib/http.ts';
import {
  distribution,
  envelope,
  formatMs,
  msFields,
  printSummary,
  round,
  writeResults,
} from './lib/report.ts';
import { benchRun, log, root, Stage } from './lib/run.ts';
import { openSessions, startCore, type Core, type Session } from './lib/stack.ts';
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

/** Milliseconds with sub-millisecond precision, comparable to Date.now() (message timestamps). */
const clock = () => performance.timeOrigin + performance.now();

// ---------------------------------------------------------------------------------------
// An observer on the topic: when each session's event arrived (for the breakdown only).

const arrivals = new Map<string, { receivedAt: number; sentAt: number }>();

async function startObserver(core: Core) {
  const contracts = builtLib('contracts');
  const kafka = new Kafka({
    clientId: 'bench-observer',
    brokers: [core.kafka.brokers],
    logLevel: logLevel.NOTHING,
  });
  const consumer = kafka.consumer({ groupId: `${core.topic}-observer`, maxWaitTimeInMs: 10 });
  run.track(Stage.client, 'observer consumer', consumer, () => consumer.disconnect());
  await consumer.connect();
  await consumer.subscribe({ topic: core.topic, fromBeginning: false });
  const partitions = new Set<number>();
  await consumer.run({
    // No offset commits: they would delay the next fetch (see bench/README.md, publisher).
    autoCommit: false,
    eachBatch: ({ batch }) => {
      if (batch.messages.length > 0) partitions.add(batch.partition);
      for (const message of batch.messages) {
        const receivedAt = clock();
        try {
          const decoded = contracts.decodeMessage(message);
          if (decoded.kind === 'heartbeat') continue;
          const sessionId = decoded.event.events[contracts.SESSION_REVOKED].subject.session?.id;
          if (sessionId) arrivals.set(sessionId, { receivedAt, sentAt: Number(message.timestamp) });
        } catch {
          // not a message of the contract: not one of ours
        }
      }
      return Promise.resolve();
    },
  });
  // Heartbeats reach every partition within a couple of seconds once the consumer fetches.
  const admin = kafka.admin();
  await admin.connect();
  const metadata = await admin.fetchTopicMetadata({ topics: [core.topic] });
  await admin.disconnect();
  const count = metadata.topics[0]?.partitions.length ?? 0;
  await run.until(
    'the observer to receive from every partition',
    () => partitions.size >= count,
    limits.observerReadyMs,
    () => ` (${partitions.size} of ${count})`,
  );
}

// ---------------------------------------------------------------------------------------
// One revocation.

/** An API instance, with a kept-alive connection of its own. */
type Api = { label: string; url: string; agent: Agent };

type Anomalies = { no_invalid_token_challenge: number; other_status: Record<number, number> };

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** GET /me at one instance, on its own connection. */
const me = (api: Api, token: string) =>
  request(`${api.url}/me`, { headers: bearer(token), agent: api.agent });

/** Until every instance answers 200 for `session`; a live session must be served everywhere. */
async function acceptedEverywhere(apis: Api[], session: Session) {
  await Promise.all(
    apis.map((api) =>
      waitFor(
        `${api.label} to accept a new session`,
        async () => {
          const reply = await me(api, session.accessToken);
          if (reply.status === 200) {
            const body = JSON.parse(reply.text) as { session_id?: string };
            if (body.session_id === session.sessionId) return true;
            throw new StopWaiting(`${api.label} answered /me with another session: ${reply.text}`);
          }
          // Only a stale view (503) may turn into a 200 by waiting; anything else is a fault.
          if (reply.status !== 503)
            throw new StopWaiting(
              `${api.label} did not accept a new session: ${reply.status} ${reply.text}`,
            );
          return false;
        },
        { timeoutMs: limits.acceptedMs, intervalMs: 5 },
      ),
    ),
  );
}

/**
 * Polls one instance back to back until it rejects `token` with 401; resolves with the time
 * the 401 arrived, the last 200 before it and how many polls it took. What is measured: no
 * pause between polls (as `waitFor` makes), so each poll is one round trip.
 */
async function rejectedBy(api: Api, token: string, deadline: number, anomalies: Anomalies) {
  let polls = 0;
  let lastAcceptedAt: number | undefined;
  for (;;) {
    const reply = await me(api, token);
    const at = clock();
    polls += 1;
    if (reply.status === 401) {
      if (!/error="invalid_token"/.test(reply.headers['www-authenticate'] ?? ''))
        anomalies.no_invalid_token_challenge += 1;
      return { rejectedAt: at, lastAcceptedAt, polls };
    }
    if (reply.status === 200) lastAcceptedAt = at;
    else anomalies.other_status[reply.status] = (anomalies.other_status[reply.status] ?? 0) + 1;
    if (performance.now() > deadline)
      throw new Error(
        `${api.label} still answers ${reply.status} ${limits.perRevocationMs} ms after a logout`,
      );
  }
}

async function revokeOnce(core: Core, apis: Api[], session: Session, anomalies: Anomalies) {
  await acceptedEverywhere(apis, session);
  const sentAt = clock();
  const reply = await post(`${core.sessionService.url}/auth/logout`, undefined, {
    headers: bearer(session.accessToken),
  });
  const t0 = clock();
  if (reply.status !== 204) throw new Error(`logout answered ${reply.status}: ${reply.text}`);
  const deadline = performance.now() + limits.perRevocationMs;
  const perApi = await Promise.all(
    apis.map((api) => rejectedBy(api, session.accessToken, deadline, anomalies)),
  );
  const t1 = Math.max(...perApi.map((r) => r.rejectedAt));
  return {
    sessionId: session.sessionId,
    t0,
    t1,
    logoutMs: t0 - sentAt,
    total: t1 - t0,
    perApi: perApi.map((r) => r.rejectedAt - t0),
    // How late the last rejection can have been noticed: since that instance's last 200.
    resolution: Math.max(...perApi.map((r) => r.rejectedAt - (r.lastAcceptedAt ?? t0))),
    polls: perApi.reduce((sum, r) => sum + r.polls, 0),
  };
}

// ---------------------------------------------------------------------------------------

await run.main(async () => {
  await build();
  run.makeDataDir();
  const topic = `bench-revocations-${Date.now().toString(36)}`;
  const core = await startCore(run, { topic });

  const bootAt = Date.now();
  const apis: Api[] = await Promise.all(
    Array.from({ length: parameters.api_instances }, async (_, i) => {
      const { label, url } = await core.startApi(
        parameters.api_service,
        `${parameters.api_service}-${i + 1}`,
      );
      return { label, url, agent: keepAliveAgent(1) };
    }),
  );
  log(`${apis.map((api) => api.url).join(', ')} ready in ${Date.now() - bootAt} ms`);
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

  const totals = samples.map((s) => s.total);
  const dist = distribution(totals);
  // Breakdown from the observer: logout answer → on the topic → the last instance rejects.
  const observed = samples.flatMap((s) => {
    const arrival = arrivals.get(s.sessionId);
    return arrival ? [{ s, arrival }] : [];
  });
  const results = {
    ...msFields(dist, 'propagation_'),
    propagation_samples: samples.length,
    goal: {
      statement:
        'p50 <= 15 ms and p99 <= 50 ms from the logout answer to the last instance rejecting',
      met: (dist.p50 ?? Infinity) <= 15 && (dist.p99 ?? Infinity) <= 50,
    },
    per_instance_ms: distribution(samples.flatMap((s) => s.perApi)),
    logout_request_ms: distribution(samples.map((s) => s.logoutMs)),
    poll_resolution_ms: distribution(samples.map((s) => s.resolution)),
    polls_per_revocation: round(samples.reduce((sum, s) => sum + s.polls, 0) / samples.length, 1),
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
