// Benchmark: how long a revocation takes from the Redis outbox to the Kafka topic, and how
// many revocations per second the publisher relays, end to end through a consumer in this
// process; outbox entries are written exactly as the session service writes them. What it
// starts and measures: bench/README.md ("Revocation publisher"). Results in
// bench/results/publisher.json.
//
//   node bench/publisher-outbox-to-topic.ts      (or: npm run bench:publisher)
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import type { KafkaMessage } from 'kafkajs';
import type * as Contracts from '@app/contracts';
import { build } from '../scripts/build.ts';
import { startSystem } from '../scripts/system.ts';
import { builtLib } from './lib/built.ts';
import {
  clock,
  distribution,
  envelope,
  formatMs,
  median,
  msFields,
  n,
  printSummary,
  round,
  writeResults,
} from './lib/report.ts';
import { benchRun, log, Stage } from './lib/run.ts';
import { observeTopic } from './lib/topic.ts';

/** The built contracts lib (after the build). */
let contracts: typeof Contracts;

/** What is measured; recorded with the results so runs can be compared. */
const parameters = {
  latency_events: 2_000,
  latency_warmup_events: 100,
  /** Pause after each latency write, so each event leaves in a batch of its own. */
  latency_pause_ms: 5,
  throughput_events: 20_000,
  throughput_pipeline_size: 500,
  throughput_repeats: 3,
  /** Users the events are spread over (the Kafka key, hence partition and outbox shard). */
  users: 1_000,
  outbox_shards: 16,
  topic_partitions: 12,
  redis_appendfsync: 'everysec' as const,
};

/** Every wait is bounded; the watchdog leaves room for the shutdown within ~5 minutes. */
const limits = {
  wholeRunMs: 240_000,
  consumerReadyMs: 30_000,
  latencyDrainMs: 30_000,
  throughputRunMs: 60_000,
};

const run = benchRun({ wholeRunMs: limits.wholeRunMs });
const layout: Contracts.OutboxLayout = { prefix: 'bench:', shards: parameters.outbox_shards };
/** The benchmark's own Redis connection, for writing the outbox. */
let client: Redis;

// ---------------------------------------------------------------------------------------
// Receipts: written events are registered here by jti before their write is sent, and
// checked off by the consumer.

// Writer and consumer share this process and its `clock`, so there is no clock skew to correct
// for; the publisher's own stamp (the message's CreateTime, Date.now() on the same machine) is
// comparable to it within a millisecond.

interface Phase {
  expected: number;
  received: number;
  lastReceivedAt: number;
  latencies: { total: number; toSend: number }[];
}

/** jti → { phase, sentAt } for every event written and not yet seen on the topic. */
const awaited = new Map<string, { phase: Phase; sentAt?: number }>();
const seen = new Set<string>();
const anomalies = { duplicates: 0, unknown: 0, invalid: 0 };

function newPhase(expected: number): Phase {
  return { expected, received: 0, lastReceivedAt: 0, latencies: [] };
}

/**
 * A receipt is the moment the message is decoded and usable by a consumer. Each latency
 * sample keeps the publisher's send time too (the message timestamp, which KafkaJS sets when
 * the publisher hands the batch over), to tell the time spent before the send from the rest.
 */
function onMessage(message: KafkaMessage) {
  let decoded;
  try {
    decoded = contracts.decodeMessage(message);
  } catch {
    anomalies.invalid += 1;
    return;
  }
  const now = clock();
  if (decoded.kind === 'heartbeat') return;
  const { jti } = decoded.event;
  const entry = awaited.get(jti);
  if (entry === undefined) {
    // At-least-once delivery allows duplicates; they must not count as receipts.
    if (seen.has(jti)) anomalies.duplicates += 1;
    else anomalies.unknown += 1;
    return;
  }
  awaited.delete(jti);
  seen.add(jti);
  const { phase, sentAt } = entry;
  phase.received += 1;
  phase.lastReceivedAt = Math.max(phase.lastReceivedAt, now);
  if (sentAt !== undefined)
    phase.latencies.push({ total: now - sentAt, toSend: Number(message.timestamp) - sentAt });
}

// ---------------------------------------------------------------------------------------
// Writing the outbox as the session service does (see publisher-fixture.ts `write()`):
// one entry per event, in the stream of the user's shard, fields `key` and `event`.

function makeEvents(count: number, tag: string) {
  const now = Date.now();
  return Array.from({ length: count }, (_, i) => {
    const userId = `bench-user-${i % parameters.users}`;
    const event = contracts.buildRevocationEvent({
      issuer: 'http://127.0.0.1:3000',
      userId,
      sessionId: `session-${tag}-${i}`,
      initiatingEntity: 'user',
      reason: 'user_logout',
      at: now + i,
    });
    return {
      jti: event.jti,
      stream: contracts.outboxStream(layout, contracts.outboxShard(userId, layout.shards)),
      fields: [
        contracts.OutboxField.Key,
        userId,
        contracts.OutboxField.Event,
        JSON.stringify(event),
      ],
    };
  });
}

/** One event at a time, each awaited, then a pause: measures an idle publisher's latency. */
async function latencyPhase() {
  const warmup = newPhase(parameters.latency_warmup_events);
  const measured = newPhase(parameters.latency_events);
  const events = makeEvents(warmup.expected + measured.expected, 'latency');
  for (const [i, event] of events.entries()) {
    run.checkRunning('the latency phase');
    const phase = i < warmup.expected ? warmup : measured;
    // Stamped before the XADD is sent: the figure includes the append's round trip (a
    // fraction of a millisecond) rather than missing a receipt that beats the reply.
    awaited.set(event.jti, { phase, sentAt: clock() });
    await client.xadd(event.stream, '*', ...event.fields);
    await sleep(parameters.latency_pause_ms);
  }
  await run.until(
    'every latency event on the topic',
    () => warmup.received === warmup.expected && measured.received === measured.expected,
    limits.latencyDrainMs,
    () => ` (${measured.received} of ${measured.expected} received)`,
  );
  return measured.latencies;
}

/** Everything in pipelines as fast as Redis takes them; from the first write to the last receipt. */
async function throughputRun(attempt: number) {
  const phase = newPhase(parameters.throughput_events);
  // Built beforehand so that only writing and relaying are timed.
  const events = makeEvents(phase.expected, `throughput-${attempt}`);
  const size = parameters.throughput_pipeline_size;
  const firstWriteAt = clock();
  for (let i = 0; i < events.length; i += size) {
    const pipeline = client.pipeline();
    for (const event of events.slice(i, i + size)) {
      awaited.set(event.jti, { phase });
      pipeline.xadd(event.stream, '*', ...event.fields);
    }
    const replies = await pipeline.exec();
    const failed = replies?.find(([error]) => error);
    if (!replies || failed) throw failed?.[0] ?? new Error('outbox pipeline was discarded');
  }
  const writtenAt = clock();
  await run.until(
    `all ${phase.expected} events of run ${attempt} on the topic`,
    () => phase.received === phase.expected,
    limits.throughputRunMs,
    () => ` (${phase.received} received)`,
  );
  const durationMs = phase.lastReceivedAt - firstWriteAt;
  return {
    events: phase.expected,
    write_ms: round(writtenAt - firstWriteAt),
    duration_ms: round(durationMs),
    events_per_s: Math.round(phase.expected / (durationMs / 1000)),
  };
}

// ---------------------------------------------------------------------------------------

/** The publisher's own Prometheus counters, as a cross-check of what the consumer saw. */
async function publisherCounters(url: string) {
  try {
    const text = await (
      await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(2_000) })
    ).text();
    const value = (name: string) =>
      Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1]);
    return {
      published: value('publisher_events_published_total'),
      retries: value('publisher_publish_retries_total'),
      dead_letters: value('publisher_dead_letters_total'),
    };
  } catch {
    return undefined;
  }
}

async function main() {
  await build();
  contracts = builtLib('contracts');
  const bootStart = Date.now();
  const topic = `bench-revocations-${Date.now().toString(36)}`;
  // Kafka, Redis and the publisher; the system stops its publisher before Kafka and Redis.
  const system = run.track(
    Stage.infrastructure,
    'system',
    await startSystem({
      dataDir: run.makeDataDir(),
      apps: ['revocation-publisher'],
      redis: { appendfsync: parameters.redis_appendfsync },
      env: () => ({
        REDIS_KEY_PREFIX: layout.prefix,
        OUTBOX_SHARDS: String(layout.shards),
        REVOCATION_TOPIC: topic,
        TOPIC_PARTITIONS: String(parameters.topic_partitions),
        INSTANCE_ID: 'bench-publisher',
        LOG_LEVEL: 'warn',
      }),
      log,
    }),
  );
  const publisher = system.app('revocation-publisher');
  log(
    `Kafka ${system.brokers}, Redis ${system.redisUrl} and the publisher ${publisher.url} up in ` +
      `${Date.now() - bootStart} ms (topic ${topic})`,
  );

  client = new Redis(system.redisUrl, { commandTimeout: 5_000, maxRetriesPerRequest: 1 });
  run.track(Stage.client, 'redis client', client, () => {
    client.disconnect();
  });
  // Heartbeats flow only once the publisher leased the outbox shards and read them.
  await observeTopic(
    run,
    { brokers: system.brokers, topic, fromBeginning: true, readyMs: limits.consumerReadyMs },
    onMessage,
  );
  log('consumer receiving; latency phase');

  const samples = await latencyPhase();
  const latency = distribution(samples.map((sample) => sample.total));

  const runs = [];
  for (let attempt = 1; attempt <= parameters.throughput_repeats; attempt += 1) {
    log(`throughput run ${attempt} of ${parameters.throughput_repeats}`);
    // Let the previous run's acknowledgements settle so each run starts from an idle publisher.
    await sleep(1_000);
    runs.push(await throughputRun(attempt));
  }
  // Late duplicates, if any, arrive within a moment.
  await sleep(500);
  const counters = await publisherCounters(publisher.url);

  const results = {
    ...msFields(latency, 'outbox_to_topic_'),
    outbox_to_topic_samples: samples.length,
    // Where the time goes, split at the publisher's send (the message timestamp, whole ms).
    latency_breakdown: {
      outbox_to_send_ms: distribution(samples.map((sample) => sample.toSend)),
      send_to_receipt_ms: distribution(samples.map((sample) => sample.total - sample.toSend)),
    },
    throughput_events_per_s: median(runs.map((run) => run.events_per_s)),
    throughput_runs: runs,
    ...envelope({ kafka: true }),
    parameters,
    anomalies: { ...anomalies, publisher: counters },
  };
  const file = writeResults('publisher.json', results);
  const r = results;
  const m = r.machine;
  printSummary([
    `Revocation publisher, outbox → topic (Kafka ${r.kafka_version}, ${m.cpus} × ${m.cpu_model}, ${m.total_memory_gib} GiB, Node ${m.node}, load ${m.load_average_1_5_15m.join(' ')})`,
    `  latency, ${n(r.outbox_to_topic_samples)} events one at a time (after ${r.parameters.latency_warmup_events} warm-up):`,
    `    ${formatMs(latency)}`,
    `    outbox → publisher send:  ${formatMs(r.latency_breakdown.outbox_to_send_ms)}`,
    `    send → consumer receipt:  ${formatMs(r.latency_breakdown.send_to_receipt_ms)}`,
    `  throughput, ${n(r.parameters.throughput_events)} events in pipelines of ${r.parameters.throughput_pipeline_size}, first write to last receipt:`,
    `    ${n(r.throughput_events_per_s)} events/s (median of ${r.throughput_runs.map((run) => n(run.events_per_s)).join(', ')})`,
    `  duplicates ${r.anomalies.duplicates}, invalid ${r.anomalies.invalid}, publisher retries ${r.anomalies.publisher?.retries ?? '?'}`,
    `Results: ${file}`,
  ]);
}

await run.main(main);
