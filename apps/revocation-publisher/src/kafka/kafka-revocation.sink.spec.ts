import type { ClientKafka } from '@nestjs/microservices';
import type { RecordMetadata } from 'kafkajs';
import type { TopicSettings } from '../publisher.settings';
import { KafkaRevocationSink, partitionOf } from './kafka-revocation.sink';
import type { TopicProvisioner } from './topic-provisioner';

// A send the cluster never answers (its leader behind a network partition) is given up after
// the sink's deadline and the producer reset, so that the relay's retry goes through a new
// producer with fresh metadata instead of waiting on KafkaJS's retries to the same broker.

const TOPIC = 'revocations';
const PARTITIONS = 4;
const message = { key: 'alice', value: '{}', headers: {} };

function sinkWith(sendBatch: () => Promise<RecordMetadata[]>) {
  const client = {
    connect: jest.fn(() => Promise.resolve({ sendBatch })),
    close: jest.fn(() => Promise.resolve()),
  };
  const sink = new KafkaRevocationSink(
    client as unknown as ClientKafka,
    { partitions: PARTITIONS } as TopicProvisioner,
    { topic: TOPIC } as TopicSettings,
  );
  sink.sendDeadlineMs = 50;
  return { sink, client };
}

describe('KafkaRevocationSink', () => {
  it('gives up a send not acknowledged within its deadline, and resets the producer', async () => {
    const { sink, client } = sinkWith(() => new Promise(() => undefined));
    await expect(sink.publish([message], [])).rejects.toThrow(
      'Kafka did not acknowledge the send within 50 ms',
    );
    expect(client.close).toHaveBeenCalledTimes(1);
  });

  it('resolves once the cluster acknowledged, keeping the producer', async () => {
    const acknowledged: RecordMetadata[] = [
      { topicName: TOPIC, partition: partitionOf('alice', PARTITIONS), errorCode: 0 },
    ];
    const { sink, client } = sinkWith(() => Promise.resolve(acknowledged));
    await expect(sink.publish([message], [])).resolves.toBeUndefined();
    expect(client.close).not.toHaveBeenCalled();
  });
});
