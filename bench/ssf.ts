// Benchmark: the SSF transmitter (apps/ssf-transmitter), issue 14. Revocations are put on the
// topic at a steady rate as the publisher writes them (key = user id, the message timestamp
// is the producer's clock); 10 receivers, each a push stream (RFC 8935) of its own, answer 202
// to every SET. Measured: from each event's timestamp on the topic to each receiver's 202 (same
// machine, same clock), and the events per second delivered to all 10.
//
//   node --disable-warning=TimeoutNegativeWarning bench/ssf.ts   (npm run bench:ssf)
//
// BENCH_SSF_EVENTS, BENCH_SSF_RATE, BENCH_SSF_RECEIVERS and BENCH_SSF_USERS override the
// defaults (4,000 events at 2,000/s, 10 receivers, 1,000 users).
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel } from 'kafkajs';
import { build } from '../scripts/build.ts';
import { envInt, freePort } from '../scripts/lib/process.ts';
import { startApp, startSystem } from '../scripts/system.ts';
import { builtLib } from './lib/built.ts';
import { cpuBetween, cpuSnapshot } from './lib/cpu.ts';
import { post } from './lib/http.ts';
import {
  clock,
  distribution,
  envelope,
  formatMs,
  msFields,
  n,
  printSummary,
  round,
  writeResults,
} from './lib/report.ts';
import { benchRun, log, Stage } from './lib/run.ts';

const parameters = {
  events: envInt('BENCH_SSF_EVENTS', 4_000, { min: 100 }),
  offered_events_per_s: envInt('BENCH_SSF_RATE', 2_000, { min: 1 }),
  receivers: envInt('BENCH_SSF_RECEIVERS', 10, { min: 1 }),
  users: envInt('BENCH_SSF_USERS', 1_000, { min: 1 }),
  warmup_events: 200,
  partitions: 6,
  produced_every_ms: 10,
  delivery: 'push (RFC 8935), one stream per receiver, each answering 202 at once',
  measured_from:
    'the Kafka message timestamp (producer clock, CreateTime) to the receiver writing 202',
};

const run = benchRun({
  wholeRunMs:
    180_000 +
    ((parameters.events + parameters.warmup_events) / parameters.offered_events_per_s) * 20_000,
});
const TOKEN = 'bench-ssf-client-token-0123456789';

/** A receiver answering 202 to every SET, keeping when each event (by `txn`) reached it. */
async function startReceiver(index: number, arrivals: Map<string, number>[]) {
  const got = new Map<string, number>();
  arrivals[index] = got;
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const payload = Buffer.concat(chunks).toString('utf8').split('.')[1] ?? '';
      const { txn } = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as {
        txn?: string;
      };
      if (txn !== undefined && !got.has(txn)) got.set(txn, clock());
      response.writeHead(202).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  run.track(Stage.client, `receiver-${index}`, server, () => {
    server.closeAllConnections();
    server.close();
  });
  return `http://127.0.0.1:${port}/events`;
}

await run.main(async () => {
  await build();
  run.makeDataDir();
  const { buildRevocationEvent, encodeRevocation } = builtLib('contracts');
  const topic = `bench-ssf-${Date.now().toString(36)}`;
  const system = run.track(
    Stage.infrastructure,
    'system',
    await startSystem({
      dataDir: run.dataDir,
      apps: [],
      redis: { appendfsync: 'everysec' },
      log,
    }),
  );
  const kafka = new Kafka({
    clientId: 'bench-ssf',
    brokers: [system.brokers],
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    topics: [{ topic, numPartitions: parameters.partitions }],
    waitForLeaders: true,
  });
  await admin.disconnect();

  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const transmitter = run.track(
    Stage.app,
    'ssf-transmitter',
    await startApp({
      name: 'ssf-transmitter',
      port,
      logFile: join(run.dataDir, 'logs', 'ssf-transmitter.log'),
      env: {
        INSTANCE_ID: 'bench-ssf',
        KAFKA_BROKERS: system.brokers,
        REDIS_URL: system.redisUrl,
        REVOCATION_TOPIC: topic,
        SSF_ISSUER: url,
        SSF_CLIENTS: JSON.stringify([{ client_id: 'bench', token: TOKEN }]),
        LOG_LEVEL: 'warn',
      },
    }),
  );

  const arrivals: Map<string, number>[] = [];
  for (let i = 0; i < parameters.receivers; i += 1) {
    const endpoint_url = await startReceiver(i, arrivals);
    const reply = await post(
      `${url}/ssf/streams`,
      { delivery: { method: 'urn:ietf:rfc:8935', endpoint_url } },
      { headers: { authorization: `Bearer ${TOKEN}` } },
    );
    if (reply.status !== 201) throw new Error(`stream ${i}: ${reply.status} ${reply.text}`);
  }
  log(`transmitter ready, ${parameters.receivers} push streams`);

  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  run.track(Stage.client, 'producer', producer, () => producer.disconnect());
  const topicAt = new Map<string, number>();

  /** Puts `count` revocations on the topic at the offered rate; returns their jtis. */
  async function produce(count: number, first: number): Promise<string[]> {
    const perTick = Math.max(
      1,
      Math.round((parameters.offered_events_per_s * parameters.produced_every_ms) / 1000),
    );
    const jtis: string[] = [];
    const started = clock();
    for (let sent = 0; sent < count; sent += perTick) {
      run.checkRunning('producing');
      const at = Date.now();
      const events = Array.from({ length: Math.min(perTick, count - sent) }, (_, i) =>
        buildRevocationEvent({
          issuer: 'https://bench.example',
          userId: `user-${(first + sent + i) % parameters.users}`,
          sessionId: `session-${first + sent + i}`,
          initiatingEntity: 'user',
          reason: 'user_logout',
          at,
        }),
      );
      const messages = events.map((event) => ({
        ...encodeRevocation(event),
        timestamp: String(at),
      }));
      for (const event of events) {
        topicAt.set(event.jti, at);
        jtis.push(event.jti);
      }
      await producer.send({ topic, acks: -1, messages });
      const due = started + ((sent + perTick) / parameters.offered_events_per_s) * 1000;
      const wait = due - clock();
      if (wait > 0) await sleep(wait);
    }
    return jtis;
  }

  async function allDelivered(jtis: string[], what: string): Promise<void> {
    const deadline = Date.now() + 120_000;
    while (!arrivals.every((got) => jtis.every((jti) => got.has(jti)))) {
      run.checkRunning(what);
      if (Date.now() > deadline) throw new Error(`${what}: not all delivered within 120 s`);
      await sleep(20);
    }
  }

  const warmup = await produce(parameters.warmup_events, 0);
  await allDelivered(warmup, 'the warm-up');
  log(`warm-up delivered; ${parameters.events} events at ${parameters.offered_events_per_s}/s`);

  const pids = {
    ssf_transmitter: transmitter.pid,
    bench_receivers_and_producer: process.pid,
    kafka: system.kafka?.pid,
    redis: system.redis?.pid,
  };
  const cpuBefore = cpuSnapshot(pids);
  const firstAt = clock();
  const jtis = await produce(parameters.events, parameters.warmup_events);
  await allDelivered(jtis, 'the measured events');
  const cpu = cpuBetween(cpuBefore, cpuSnapshot(pids), parameters.events * parameters.receivers);
  const lastDelivery = Math.max(...arrivals.flatMap((got) => jtis.map((jti) => got.get(jti) ?? 0)));
  const delays = arrivals.flatMap((got) =>
    jtis.map((jti) => (got.get(jti) ?? NaN) - (topicAt.get(jti) ?? NaN)),
  );
  const dist = distribution(delays);
  const eventsPerS = round(parameters.events / ((lastDelivery - firstAt) / 1000), 0);
  const metrics = await (await fetch(`${transmitter.url}/metrics`)).text();
  const failures = [
    ...metrics.matchAll(/^ssf_push_total\{outcome="(failed|timeout|rejected)"[^}]*\} (\d+)/gm),
  ].map(([, outcome, count]) => `${outcome} ${count}`);

  const p99 = dist.p99 ?? Infinity;
  const results = {
    ssf_events_per_s: eventsPerS,
    ...msFields(dist, 'ssf_push_'),
    ssf_sets_delivered: delays.length,
    ssf_push_failures: failures,
    cpu_per_set: cpu,
    goals: {
      ssf_push: {
        statement: 'p99 <= 100 ms from the topic to the receiver’s 202',
        met: p99 <= 100,
      },
      ssf_throughput: {
        statement: '>= 2,000 events/s delivered to each of 10 receivers',
        met: eventsPerS >= 2_000 && parameters.receivers >= 10,
      },
    },
    ...envelope({ kafka: true }),
    parameters,
  };
  const file = writeResults('ssf.json', results);
  const met = (goal: { met: boolean }) => (goal.met ? 'met' : 'NOT met');
  printSummary([
    `SSF transmitter, ${parameters.receivers} push receivers (load ${results.machine.load_average_1_5_15m.join(' ')})`,
    `  ${n(parameters.events)} revocations offered at ${n(parameters.offered_events_per_s)}/s → ${n(delays.length)} SETs`,
    `  topic → receiver's 202: ${formatMs(dist)}   (goal p99 <= 100 ms: ${met(results.goals.ssf_push)})`,
    `  delivered to all: ${n(eventsPerS)} events/s   (goal >= 2,000: ${met(results.goals.ssf_throughput)})`,
    `  CPU (cores busy / ms per SET): ${Object.entries(cpu)
      .map(([name, use]) =>
        typeof use === 'number'
          ? `all ${use}`
          : `${name} ${use?.cores_busy} / ${use?.cpu_ms_per_request}`,
      )
      .join(', ')}`,
    ...(failures.length ? [`  push failures: ${failures.join(', ')}`] : []),
    `Results: ${file}`,
  ]);
});
