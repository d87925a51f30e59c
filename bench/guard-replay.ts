// Benchmark: the API guard's replay on start (libs/revocation-guard), issue 5: how long a new
// API instance takes to become ready when the revocation window holds 1,000,000 events, and
// the memory it then holds; each replay is a fresh guard in a process of its own
// (bench/guard-replay-child.ts), so its memory is measured alone. What it starts and measures:
// bench/README.md ("API guard"). Results in bench/results/guard-replay.json.
//
//   npm run bench:guard-replay   (or: node --expose-gc bench/guard-replay.ts)
//
// BENCH_REPLAY_EVENTS overrides the number of events replayed (default 1,000,000).
// BENCH_REPLAY_BASELINE_DIST=<a copy of dist/ built from other code, e.g. the last commit>:
// each run also replays with that guard, right after the current one, on the same topic (a
// before/after measured side by side, under the same load); results in `replay.baseline`.
// BENCH_REPLAY_CPU_PROF=<folder>: each replaying process writes a CPU profile there.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { CompressionTypes, type Message } from 'kafkajs';
import { envInt } from '../scripts/lib/process.ts';
import type { ReplayReport, ReplaySettings } from './guard-replay-child.ts';
import { builtLib } from './lib/built.ts';
import { procCpuMs } from './lib/cpu.ts';
import {
  AUDIENCE,
  HEARTBEAT_INTERVAL_MS,
  startGuardBench,
  TOPIC_PARTITIONS,
  withTimeout,
} from './lib/guard-bench.ts';
import { envelope, median, n, printSummary, round, writeResults } from './lib/report.ts';
import { benchRun, log } from './lib/run.ts';

/** What is measured; recorded with the results so runs can be compared. */
const parameters = {
  replay_events: envInt('BENCH_REPLAY_EVENTS', 1_000_000, { min: 1 }),
  /** Events are keyed by user id (the partition key), spread over this many users. */
  replay_users: 100_000,
  /** Every 50th event has no session id: it ends every session of its user (log out everywhere). */
  user_wide_every: 50,
  topic_partitions: TOPIC_PARTITIONS,
  produce_batch_messages: 5_000,
  produce_sends_in_flight: 4,
  replay_runs: 3,
  /**
   * The replaying guards' longest token lifetime (their window is this + 5 s tolerance + 1 s).
   * Longer than the 300 s default only so that the events produced at the start are still in
   * the window at the last replay, minutes later; what a replay reads and holds is the same.
   */
  replay_access_token_max_ttl_s: 900,
  heartbeat_interval_ms: HEARTBEAT_INTERVAL_MS,
};

/** Where to find the guard measured side by side with the current build, if any. */
const baselineDist = process.env.BENCH_REPLAY_BASELINE_DIST;
const cpuProfileDir = process.env.BENCH_REPLAY_CPU_PROF;

/** Every wait is bounded; the watchdog leaves room for the shutdown within 6 minutes. */
const limits = {
  // Replays side by side with a baseline take twice as long: a tool run by hand, not by all.ts.
  wholeRunMs: baselineDist === undefined ? 330_000 : 600_000,
  produceMs: baselineDist === undefined ? 150_000 : 240_000,
  replayRunMs: 90_000,
  childExitMs: 15_000,
};

const run = benchRun({ wholeRunMs: limits.wholeRunMs });
type Bench = Awaited<ReturnType<typeof startGuardBench>>;

// ---------------------------------------------------------------------------------------
// Producing the window: 1,000,000 valid revocation events, then a heartbeat per partition.

/** Realistic ids: what the session service hands out (`s<shard>_` + 22 base64url characters). */
const sessionId = (i: number) => `s${i % 16}_${i.toString(36).padStart(22, '0')}`;

async function produceWindow({ producer, admin, issuer, topic, sendHeartbeats }: Bench) {
  const contracts = builtLib('contracts');
  const { replay_events: total, user_wide_every: every } = parameters;
  let next = 0;
  let sent = 0;
  let bytes = 0;
  /** Events that name a session: the revoked sessions every replay must end up holding. */
  let sessions = 0;
  let nextReport = 200_000;
  // The contract's encoder validates every event with its schema, which takes as long as
  // building it: done for every 1,000th event, whose message must come out the same; the others
  // are built by the same steps without the check (and every replay decodes and validates all).
  const event = (userId: string, session: string | undefined, at: number) =>
    contracts.buildRevocationEvent({
      issuer: issuer.issuer,
      userId,
      sessionId: session,
      initiatingEntity: 'user',
      reason: 'user_logout',
      at,
    });
  const { headers } = contracts.encodeRevocation(event('u', undefined, Date.now()));
  const batch = () => {
    const from = next;
    next = Math.min(total, from + parameters.produce_batch_messages);
    // One instant per batch: all of them recent, inside any replay window that follows.
    const at = Date.now();
    const messages: Message[] = [];
    for (let i = from; i < next; i += 1) {
      const userId = `bench-user-${i % parameters.replay_users}`;
      const userWide = i % every === every - 1;
      if (!userWide) sessions += 1;
      const revocation = event(userId, userWide ? undefined : sessionId(i), at);
      const value = JSON.stringify(revocation);
      if (i % 1_000 === 0) {
        const checked = contracts.encodeRevocation(revocation);
        if (checked.key !== userId || checked.value !== value)
          throw new Error(`event ${i} does not encode as the contract encodes it`);
      }
      bytes += value.length;
      messages.push({ key: userId, value, headers });
    }
    return messages;
  };
  const sender = async () => {
    while (next < total) {
      run.checkRunning('producing');
      const messages = batch();
      await producer.send({ topic, acks: 1, compression: CompressionTypes.None, messages });
      sent += messages.length;
      if (sent >= nextReport) {
        log(`produced ${n(sent)} of ${n(total)}`);
        nextReport += 200_000;
      }
    }
  };
  // First a heartbeat per partition, alone: right after a topic is created the broker may still
  // refuse writes to some partitions (not the leader yet), and KafkaJS then sends the whole
  // request again, writing twice what the other partitions had taken. Only heartbeats may be
  // written twice that way, never the events counted.
  await sendHeartbeats();
  const started = performance.now();
  await withTimeout(
    Promise.all(Array.from({ length: parameters.produce_sends_in_flight }, sender)),
    limits.produceMs,
    `producing ${n(total)} events`,
  );
  const durationMs = performance.now() - started;
  await sendHeartbeats();
  const offsets = await admin.fetchTopicOffsets(topic);
  const onTopic = offsets.reduce((sum, { high }) => sum + Number(high), 0);
  return {
    events: sent,
    duration_ms: Math.round(durationMs),
    events_per_s: Math.round(sent / (durationMs / 1000)),
    sessions_revoked: sessions,
    mean_value_bytes: Math.round(bytes / sent),
    messages_on_topic: onTopic,
    // The events, and a heartbeat per partition before and after them; more means retried sends.
    messages_written_twice: onTopic - sent - 2 * TOPIC_PARTITIONS,
    topic_bytes_on_disk: topicBytesOnDisk(join(run.dataDir, 'kafka'), topic),
  };
}

/** Bytes of the topic's log segments on disk (all partitions). */
function topicBytesOnDisk(kafkaDataDir: string, topic: string) {
  const logDir = join(kafkaDataDir, 'kraft');
  let bytes = 0;
  for (const dir of readdirSync(logDir).filter((name) => name.startsWith(`${topic}-`)))
    for (const file of readdirSync(join(logDir, dir)))
      if (file.endsWith('.log')) bytes += statSync(join(logDir, dir, file)).size;
  return bytes;
}

// ---------------------------------------------------------------------------------------
// One replay: a child process starts a fresh guard on the full topic and reports.

async function replayRun(
  settings: ReplaySettings,
  kafkaPid: number | undefined,
  produced: { messages_on_topic: number; sessions_revoked: number },
) {
  const name = `replay ${settings.run}${settings.distDir === undefined ? '' : ' (baseline)'}`;
  const profile =
    cpuProfileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${resolve(cpuProfileDir)}`];
  const child = fork(
    new URL('./guard-replay-child.ts', import.meta.url),
    [JSON.stringify(settings)],
    {
      execArgv: ['--expose-gc', '--disable-warning=TimeoutNegativeWarning', ...profile],
      // All it says are lines of its own, `[replay n] …`: progress, the guard's warnings.
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    },
  );
  // A client of this run: stopped first at the end, killed outright if this process exits.
  const exit = run.trackChild(name, child);

  const brokerCpuBefore = procCpuMs(kafkaPid);
  const report = await withTimeout(
    Promise.race([
      once(child, 'message').then(([message]) => message as ReplayReport),
      exit.then(([code, signal]) => {
        throw new Error(`${name} exited (${signal ?? code}) before it was ready`);
      }),
    ]),
    limits.replayRunMs,
    `${name} to be ready`,
  );
  const brokerCpuMs = (procCpuMs(kafkaPid) ?? NaN) - (brokerCpuBefore ?? NaN);
  // The next run starts only once this one is gone: they must not compete for the CPUs.
  await withTimeout(exit, limits.childExitMs, `${name} to exit`);
  const { invalid_messages: invalid, ...summary } = report;
  // A replay that did not read and apply everything has no figure worth reporting.
  if (invalid > 0 || summary.messages_read !== produced.messages_on_topic)
    throw new Error(
      `${name} read ${summary.messages_read} of ${produced.messages_on_topic} messages, ${invalid} invalid`,
    );
  if (summary.revoked_sessions_held !== produced.sessions_revoked)
    throw new Error(
      `${name} holds ${summary.revoked_sessions_held} revoked sessions, not ${produced.sessions_revoked}`,
    );
  return {
    ...summary,
    broker_cpu_ms: Number.isNaN(brokerCpuMs) ? undefined : Math.round(brokerCpuMs),
  };
}

/** The runs' medians, and what is the same in every run (messages, what is held). */
function medians(runs: Awaited<ReturnType<typeof replayRun>>[]) {
  const pick = (field: (summary: (typeof runs)[number]) => number | undefined) =>
    median(runs.map((summary) => field(summary) ?? NaN));
  const [first] = runs;
  return {
    messages_in_window: first?.messages_in_window,
    ready_ms: pick((x) => x.ready_ms),
    events_per_s: pick((x) => x.events_per_s),
    first_message_after_ms: pick((x) => x.first_message_after_ms),
    revoked_sessions_held: first?.revoked_sessions_held,
    users_revoked_held: first?.users_revoked_held,
    heap_growth_bytes: pick((x) => x.heap_growth_bytes),
    held_growth_bytes: pick((x) => x.held_growth_bytes),
    rss_growth_bytes: pick((x) => x.rss_growth_bytes),
    peak_rss_bytes: pick((x) => x.peak_rss_bytes),
    bytes_per_revoked_session: pick((x) => x.bytes_per_revoked_session),
    guard_cpu_share: pick((x) => x.guard_cpu_share),
  };
}

const mib = (bytes: number) => `${(bytes / 1024 ** 2).toFixed(1)} MiB`;

// ---------------------------------------------------------------------------------------

await run.main(async () => {
  const wallStart = performance.now();
  const bench = await startGuardBench(run, 'replay');
  const { kafka, issuer, topic } = bench;
  log(`producing ${n(parameters.replay_events)} revocation events to ${topic}`);
  const produced = await produceWindow(bench);
  log(
    `produced ${n(produced.events)} events in ${n(produced.duration_ms)} ms ` +
      `(${n(produced.events_per_s)}/s, ${n(produced.messages_on_topic)} messages on the topic, ` +
      `${n(produced.messages_written_twice)} written twice)`,
  );

  const guard = {
    brokers: [kafka.brokers],
    topic,
    jwksUrl: issuer.jwksUrl,
    issuer: issuer.issuer,
    audience: AUDIENCE,
    accessTokenMaxTtlSeconds: parameters.replay_access_token_max_ttl_s,
  };
  type Run = Awaited<ReturnType<typeof replayRun>>;
  const runs: Run[] = [];
  const baselineRuns: Run[] = [];
  for (let index = 1; index <= parameters.replay_runs; index += 1) {
    log(`replay ${index} of ${parameters.replay_runs}`);
    const summary = await replayRun({ run: index, guard }, kafka.pid, produced);
    log(
      `replay ${index}: ready in ${n(summary.ready_ms)} ms (${n(summary.events_per_s)} events/s), ` +
        `held +${mib(summary.held_growth_bytes)}, peak RSS ${mib(summary.peak_rss_bytes)}`,
    );
    runs.push(summary);
    if (baselineDist === undefined) continue;
    const before = await replayRun(
      { run: index, guard, distDir: resolve(baselineDist) },
      kafka.pid,
      produced,
    );
    log(
      `replay ${index} (baseline): ready in ${n(before.ready_ms)} ms, peak RSS ${mib(before.peak_rss_bytes)}`,
    );
    baselineRuns.push(before);
  }

  const replay = { events: produced.events, ...medians(runs), runs, produced };
  const results = {
    /** The headline figures (issue 15): latest.json takes them as they are. */
    replay_ready_ms: replay.ready_ms,
    replay_peak_rss_mib: round(replay.peak_rss_bytes / 1024 ** 2, 1),
    goals: {
      replay_ready: { bound_ms: 5_000, met: replay.ready_ms <= 5_000 },
      replay_peak_rss: { bound_mib: 300, met: replay.peak_rss_bytes <= 300 * 1024 ** 2 },
    },
    replay,
    ...(baselineRuns.length > 0 && {
      baseline: { dist: baselineDist, ...medians(baselineRuns), runs: baselineRuns },
    }),
    ...envelope({ kafka: true }),
    parameters,
    wall_time_s: Math.round((performance.now() - wallStart) / 1000),
  };
  const file = writeResults('guard-replay.json', results);

  const r = results.replay;
  const m = results.machine;
  const b = results.baseline;
  printSummary([
    `API guard, replay on start (Kafka ${results.kafka_version}, ${m.cpus} × ${m.cpu_model}, Node ${m.node}, load ${m.load_average_1_5_15m.join(' ')})`,
    `  ${n(r.messages_in_window)} messages in the window (median of ${runs.length} runs, each a fresh process):`,
    `    ready after ${n(r.ready_ms)} ms: ${n(r.events_per_s)} events/s (runs: ${runs.map((x) => n(x.ready_ms)).join(' · ')} ms)`,
    `    first message after ${n(r.first_message_after_ms)} ms; guard CPU ${Math.round(r.guard_cpu_share * 100)}% of the wall time`,
    `    held: ${n(r.revoked_sessions_held)} revoked sessions, ${n(r.users_revoked_held)} users; heap and array buffers +${mib(r.held_growth_bytes)} (${r.bytes_per_revoked_session} B per session; heap +${mib(r.heap_growth_bytes)}), RSS +${mib(r.rss_growth_bytes)}, peak RSS ${mib(r.peak_rss_bytes)}`,
    ...(b
      ? [
          `    baseline (${b.dist}), same topic, each run right after: ready after ${n(b.ready_ms)} ms (runs: ${b.runs.map((x) => n(x.ready_ms)).join(' · ')} ms), peak RSS ${mib(b.peak_rss_bytes)}`,
        ]
      : []),
    `    (produced once: ${n(produced.events)} events in ${n(produced.duration_ms)} ms, ${mib(produced.topic_bytes_on_disk)} on disk)`,
    `Results: ${file} (${results.wall_time_s} s)`,
  ]);
});
