import { Inject, Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { ClientKafka } from '@nestjs/microservices';
import { deadLetterTopic, encodeHeartbeat, type Heartbeat } from '@app/contracts';
import type { TopicMessages } from 'kafkajs';
import type { RevocationPublisherEnv } from '../config';
import type { OutgoingMessage, RevocationSink } from '../relay/revocation-sink';

export const REVOCATION_KAFKA_CLIENT = Symbol('REVOCATION_KAFKA_CLIENT');

/**
 * Publishes through the NestJS Kafka client in producer-only mode: an idempotent KafkaJS
 * producer, acks = all, one request in flight (so a retried batch cannot overtake the next).
 */
@Injectable()
export class KafkaRevocationSink implements RevocationSink {
  private readonly topic: string;

  constructor(
    @Inject(REVOCATION_KAFKA_CLIENT) private readonly client: ClientKafka,
    config: ConfigService<RevocationPublisherEnv, true>,
  ) {
    this.topic = config.get('REVOCATION_TOPIC', { infer: true });
  }

  async publish(events: OutgoingMessage[], deadLetters: OutgoingMessage[]): Promise<void> {
    const topicMessages: TopicMessages[] = [];
    if (events.length > 0) topicMessages.push({ topic: this.topic, messages: events });
    if (deadLetters.length > 0)
      topicMessages.push({ topic: deadLetterTopic(this.topic), messages: deadLetters });
    const producer = await this.client.connect();
    await producer.sendBatch({ acks: -1, topicMessages });
  }

  async heartbeat(heartbeat: Heartbeat, partitions: number): Promise<void> {
    const producer = await this.client.connect();
    await producer.send({
      topic: this.topic,
      acks: -1,
      messages: Array.from({ length: partitions }, (_, partition) =>
        encodeHeartbeat(heartbeat, partition),
      ),
    });
  }
}
