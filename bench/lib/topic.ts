// A KafkaJS consumer in the benchmark's process that sees every message on a topic as an API
// instance would, in a consumer group of its own.
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel, type KafkaMessage } from 'kafkajs';
import { Stage, type BenchRun } from './run.ts';

/**
 * Subscribes to `topic` and hands each message to `onMessage`; resolves once a message came
 * from every partition: the consumer then fetches all of them (the publisher's heartbeats
 * reach every partition within a couple of seconds). Tracked by `run`.
 */
export async function observeTopic(
  run: BenchRun,
  { brokers, topic, fromBeginning, readyMs }: ObserveOptions,
  onMessage: (message: KafkaMessage) => void,
): Promise<void> {
  // Quiet: KafkaJS logs retriable start-up errors (no group coordinator yet) as errors;
  // real trouble shows as a bounded wait timing out with what was still missing.
  const kafka = new Kafka({
    clientId: 'bench-observer',
    brokers: brokers.split(','),
    logLevel: logLevel.NOTHING,
  });
  // A short fetch wait: the broker answers a fetch as soon as one message is there, and
  // within 10 ms otherwise, so the consumer adds little to what is measured.
  const consumer = kafka.consumer({ groupId: `${topic}-observer`, maxWaitTimeInMs: 10 });
  run.track(Stage.client, 'observer consumer', consumer, () =>
    Promise.race([consumer.disconnect(), sleep(5_000)]),
  );
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning });
  const partitions = new Set<number>();
  await consumer.run({
    // KafkaJS otherwise commits offsets after every non-empty batch and awaits the commit
    // before its next fetch: measured on a 2-CPU machine, that took the publisher's median
    // latency from about 22 to 65 ms. This group is thrown away after the run.
    autoCommit: false,
    eachBatch: ({ batch }) => {
      if (batch.messages.length > 0) partitions.add(batch.partition);
      for (const message of batch.messages) onMessage(message);
      return Promise.resolve();
    },
  });
  const admin = kafka.admin();
  await admin.connect();
  const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
  await admin.disconnect();
  const count = metadata.topics[0]?.partitions.length ?? 0;
  await run.until(
    `the observer to receive from all ${count} partitions`,
    () => partitions.size >= count,
    readyMs,
    () => ` (${partitions.size} so far)`,
  );
}

interface ObserveOptions {
  brokers: string;
  topic: string;
  fromBeginning: boolean;
  readyMs: number;
}
