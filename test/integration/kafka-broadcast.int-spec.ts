import { ensureTopics } from '@app/kafka';
import { eventually, testInfra, uniqueName } from '@app/testing';
import { Kafka, logLevel, type Consumer } from 'kafkajs';

// Every API instance relies on this: consumers in different groups each receive every
// message, and one key's messages arrive in the order they were produced.

const PARTITIONS = 3;
const KEYS = Array.from({ length: 12 }, (_, i) => `user-${i}`);
const PER_KEY = 25;

interface Received {
  key: string;
  seq: number;
  partition: number;
}

describe('Kafka broadcast to several consumer groups (real broker)', () => {
  const kafka = new Kafka({
    clientId: uniqueName('broadcast-test'),
    brokers: testInfra().kafkaBrokers,
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  const consumers: Consumer[] = [];
  let topic: string;

  beforeAll(async () => {
    await admin.connect();
  });

  beforeEach(async () => {
    topic = uniqueName('broadcast');
    await ensureTopics(admin, [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }]);
  });

  afterEach(async () => {
    await Promise.all(consumers.splice(0).map((consumer) => consumer.disconnect()));
  });

  afterAll(async () => {
    await admin.disconnect();
  });

  /** Subscribes a consumer in `groupId`, resolves once it has joined, and collects into `into`. */
  async function consume(groupId: string, into: Received[]): Promise<Consumer> {
    const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
    consumers.push(consumer);
    let joined = false;
    consumer.on(consumer.events.GROUP_JOIN, () => {
      joined = true;
    });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: ({ message, partition }) => {
        const [key, seq] = String(message.value).split(':');
        into.push({ key: key!, seq: Number(seq), partition });
        return Promise.resolve();
      },
    });
    await eventually(`${groupId} to join`, () => (joined ? true : undefined));
    return consumer;
  }

  async function produceAll(): Promise<void> {
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    try {
      for (let seq = 0; seq < PER_KEY; seq += 1) {
        await producer.send({
          topic,
          acks: -1,
          messages: KEYS.map((key) => ({ key, value: `${key}:${seq}` })),
        });
      }
    } finally {
      await producer.disconnect();
    }
  }

  const total = KEYS.length * PER_KEY;

  it('delivers every message to each of two groups, in per-key order', async () => {
    const a: Received[] = [];
    const b: Received[] = [];
    await consume(uniqueName('group-a'), a);
    await consume(uniqueName('group-b'), b);
    await produceAll();

    for (const received of [a, b]) {
      await eventually(`${total} messages`, () => (received.length >= total ? true : undefined));
      expect(received).toHaveLength(total);
      for (const key of KEYS) {
        const sequence = received.filter((r) => r.key === key).map((r) => r.seq);
        expect(sequence).toEqual(Array.from({ length: PER_KEY }, (_, i) => i));
      }
    }
    // The keys really were spread over all partitions, so order held across partitions too.
    expect(new Set(a.map((r) => r.partition)).size).toBe(PARTITIONS);
  });

  it('control: two consumers sharing one group split the messages instead', async () => {
    const group = uniqueName('shared-group');
    const first: Received[] = [];
    const second: Received[] = [];
    await consume(group, first);
    await consume(group, second);
    // Wait for the group to settle with partitions on both members before producing.
    const describe = () => admin.describeGroups([group]);
    await eventually('both members assigned', async () => {
      const { groups } = await describe();
      const members = groups[0]?.members ?? [];
      return groups[0]?.state === 'Stable' && members.length === 2 ? true : undefined;
    });
    await produceAll();

    await eventually(`${total} messages in all`, () =>
      first.length + second.length >= total ? true : undefined,
    );
    expect(first.length).toBeGreaterThan(0);
    expect(second.length).toBeGreaterThan(0);
    expect(first.length).toBeLessThan(total);
    expect(second.length).toBeLessThan(total);
  });
});
