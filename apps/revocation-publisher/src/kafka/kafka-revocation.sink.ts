import { Inject, Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { ClientKafka } from '@nestjs/microservices';
import { deadLetterTopic, encodeHeartbeat, type Heartbeat } from '@app/contracts';
import type { TopicMessages } from 'kafkajs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RevocationPublisherEnv } from '../config';
import type { OutgoingMessage, RevocationSink } from '../relay/revocation-sink';

const RESET_TIMEOUT_MS = 5_000;

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
    await this.resetOnFailure(async () => {
      const producer = await this.client.connect();
      await producer.sendBatch({ acks: -1, topicMessages });
    });
  }

  async heartbeat(heartbeat: Heartbeat, partitions: number): Promise<void> {
    await this.resetOnFailure(async () => {
      const producer = await this.client.connect();
      await producer.send({
        topic: this.topic,
        acks: -1,
        messages: Array.from({ length: partitions }, (_, partition) =>
          encodeHeartbeat(heartbeat, partition),
        ),
      });
    });
  }

  /**
   * After a failed send the idempotent producer's sequence numbers may be ahead of what the
   * broker holds, and every later send would fail with OUT_OF_ORDER_SEQUENCE_NUMBER (KafkaJS
   * does not recover from that). A new producer gets a new producer id and fresh sequences;
   * the relay's retry may then duplicate what the broker did keep, which at-least-once allows.
   */
  private async resetOnFailure(send: () => Promise<void>): Promise<void> {
    try {
      await send();
    } catch (error) {
      await Promise.race([this.client.close(), sleep(RESET_TIMEOUT_MS)]).catch(() => undefined);
      throw error;
    }
  }
}
