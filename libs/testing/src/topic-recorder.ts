import {
  decodeMessage,
  InvalidMessageError,
  type Heartbeat,
  type HeartbeatV1,
  type RevocationEvent,
} from '@app/contracts';
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import { uniqueName } from './test-infra';

export interface RecordedRevocation {
  key: string;
  event: RevocationEvent;
  partition: number;
  offset: string;
}
export interface RecordedHeartbeat {
  partition: number;
  /** When the producer sent it (the message's create time, ms). */
  timestamp: number;
  heartbeat: Heartbeat | HeartbeatV1;
}

/**
 * Reads a topic from the beginning in a consumer group of its own, as an API instance
 * would, and keeps every message by kind: what tests assert on.
 */
export class TopicRecorder {
  readonly revocations: RecordedRevocation[] = [];
  readonly heartbeats: RecordedHeartbeat[] = [];
  readonly invalid: { partition: number; reason: string; headers: Record<string, string> }[] = [];

  private constructor(private readonly consumer: Consumer) {}

  static async start(brokers: string[], topic: string): Promise<TopicRecorder> {
    const kafka = new Kafka({
      clientId: uniqueName('recorder'),
      brokers,
      logLevel: logLevel.NOTHING,
    });
    // Metadata refreshed every second: partitions added to the topic are read within seconds.
    const consumer = kafka.consumer({
      groupId: uniqueName('recorder'),
      maxWaitTimeInMs: 50,
      metadataMaxAge: 1_000,
    });
    const recorder = new TopicRecorder(consumer);
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: ({ message, partition }) => {
        recorder.record(partition, message);
        return Promise.resolve();
      },
    });
    return recorder;
  }

  private record(
    partition: number,
    message: Parameters<typeof decodeMessage>[0] & { offset: string; timestamp: string },
  ): void {
    try {
      const decoded = decodeMessage(message);
      if (decoded.kind === 'revocation') {
        this.revocations.push({
          key: decoded.key,
          event: decoded.event,
          partition,
          offset: message.offset,
        });
      } else {
        this.heartbeats.push({
          partition,
          timestamp: Number(message.timestamp),
          heartbeat: decoded.heartbeat,
        });
      }
    } catch (error) {
      if (!(error instanceof InvalidMessageError)) throw error;
      const headers = Object.fromEntries(
        Object.entries(message.headers ?? {}).map(([name, value]) => [name, String(value)]),
      );
      this.invalid.push({ partition, reason: error.message, headers });
    }
  }

  /** Distinct event ids received. */
  distinctJtis(): Set<string> {
    return new Set(this.revocations.map((r) => r.event.jti));
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect();
  }
}
