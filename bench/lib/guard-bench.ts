// What both guard benchmarks (guard-replay.ts, guard-request-cost.ts) start: a Kafka broker of
// their own, the session service's side of access tokens (libs/testing's access-token issuer:
// an Ed25519 key, its JWKS, tokens signed as the session service signs them), and a KafkaJS
// admin and producer to create topics and play the publisher.
import { join } from 'node:path';
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import { build } from '../../scripts/build.ts';
import { startKafka } from '../../scripts/kafka/kafka.ts';
import { allStarted, freePort } from '../../scripts/lib/process.ts';
import { builtLib } from './built.ts';
import { log, Stage, type BenchRun } from './run.ts';

/** The guards' audience; every topic's partitions; the publisher's heartbeat interval. */
export const AUDIENCE = 'bench-api';
export const TOPIC_PARTITIONS = 12;
export const HEARTBEAT_INTERVAL_MS = 1_000;

export function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
    }),
  ]).finally(() => {
    clearTimeout(timer);
  });
}

/**
 * Builds; then, in the run's data folder, Kafka and the issuer (at once), a connected admin and
 * producer, and a topic named after `what`; all tracked by `run`.
 */
export async function startGuardBench(run: BenchRun, what: string) {
  if (!globalThis.gc) throw new Error('run with --expose-gc (npm run bench:guard-* does)');
  await build();
  run.makeDataDir();
  const bootStart = Date.now();
  const [kafka, issuer] = await allStarted([
    freePort()
      .then((port) => startKafka({ port, dataDir: join(run.dataDir, 'kafka'), log }))
      .then((handle) => run.track(Stage.infrastructure, 'kafka', handle)),
    builtLib('testing')
      .startAccessTokenIssuer({ audience: AUDIENCE })
      .then((handle) => run.track(Stage.infrastructure, 'jwks', handle)),
  ]);
  log(`Kafka ${kafka.brokers} up in ${Date.now() - bootStart} ms; JWKS at ${issuer.jwksUrl}`);
  // Quiet: KafkaJS logs retriable errors (no leader yet for a new topic) as errors; real
  // trouble shows as a send failing or a bounded wait timing out.
  const client = new Kafka({
    clientId: 'bench-guard',
    brokers: [kafka.brokers],
    logLevel: logLevel.NOTHING,
  });
  const admin = client.admin();
  run.track(Stage.client, 'admin', admin, () => admin.disconnect());
  const producer = client.producer({
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  run.track(Stage.client, 'producer', producer, () => producer.disconnect());
  await Promise.all([admin.connect(), producer.connect()]);
  const topic = `bench-guard-${Date.now().toString(36)}-${what}`;
  await admin.createTopics({
    topics: [{ topic, numPartitions: TOPIC_PARTITIONS, replicationFactor: 1 }],
    waitForLeaders: true,
  });
  await warmGroupCoordinator(client, topic);
  return {
    kafka,
    issuer,
    admin,
    producer,
    topic,
    /** A heartbeat on every partition, as the publisher sends them. */
    sendHeartbeats: () =>
      producer.send({
        topic,
        acks: 1,
        messages: Array.from({ length: TOPIC_PARTITIONS }, (_, partition) =>
          builtLib('contracts').encodeHeartbeat(
            {
              publisher_id: 'bench-guard',
              sent_at: Date.now(),
              interval_ms: HEARTBEAT_INTERVAL_MS,
              partitions: TOPIC_PARTITIONS,
            },
            partition,
          ),
        ),
      }),
  };
}

/**
 * On a new broker the first consumer group to join waits for the group coordinator to load
 * (`__consumer_offsets` is created then): KafkaJS crashes the consumer on "the coordinator is
 * loading" and restarts it. A throwaway consumer joins first, so that no replay pays for it;
 * an API instance joining a running cluster never does.
 */
async function warmGroupCoordinator(client: Kafka, topic: string) {
  const consumer = client.consumer({ groupId: `${topic}-warm-up`, maxWaitTimeInMs: 100 });
  const joined = new Promise((resolve) => consumer.on(consumer.events.GROUP_JOIN, resolve));
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [topic] });
    await consumer.run({ autoCommit: false, eachBatch: () => Promise.resolve() });
    await withTimeout(joined, 30_000, 'a consumer group to join (warm-up)');
  } finally {
    await consumer.disconnect();
  }
}
