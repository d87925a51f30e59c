import { Inject, Injectable } from '@nestjs/common';
import type { ClientKafka } from '@nestjs/microservices';
import { deadLetterTopic, encodeHeartbeat, type Heartbeat } from '@app/contracts';
import {
  Partitioners,
  type Message,
  type PartitionMetadata,
  type RecordMetadata,
  type TopicMessages,
} from 'kafkajs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { OutgoingMessage, RevocationSink } from '../relay/revocation-sink';
import { TopicProvisioner } from './topic-provisioner';
import { topicSettings, type TopicSettings } from '../publisher.settings';

const RESET_TIMEOUT_MS = 5_000;

/**
 * How long one send may wait for the cluster's acknowledgement before it is given up, the
 * producer reset and the send retried by the relay. Longer than one request's timeout
 * (`requestTimeout`, 10 s in app.module.ts), so a slow acknowledgement still counts. KafkaJS
 * retries a timed-out request on the same broker with the same metadata (it refreshes them
 * only after connection and protocol errors): behind a network partition of a leader, each
 * of its retries would wait the whole timeout again, long after the cluster moved the
 * leadership; a new producer fetches fresh metadata and finds the new leader.
 */
export const SEND_DEADLINE_MS = 12_000;

export const REVOCATION_KAFKA_CLIENT = Symbol('REVOCATION_KAFKA_CLIENT');

const defaultPartitioner = Partitioners.DefaultPartitioner();

/** Kafka errors about the messages themselves: no retry of the same request can succeed. */
const REFUSED_FOR_GOOD = new Set([
  'MESSAGE_TOO_LARGE',
  'RECORD_LIST_TOO_LARGE',
  'INVALID_RECORD',
  'CORRUPT_MESSAGE',
  'INVALID_REQUIRED_ACKS',
]);

/** The partition Kafka's default partitioner (murmur2, as Java's) gives `key` among `count`. */
export function partitionOf(key: string, count: number): number {
  const partitionMetadata = Array.from(
    { length: count },
    (_, partitionId) => ({ partitionId, leader: 0 }) as PartitionMetadata,
  );
  return defaultPartitioner({ topic: '', partitionMetadata, message: { key, value: null } });
}

/**
 * Publishes through the NestJS Kafka client in producer-only mode: an idempotent KafkaJS
 * producer, acks = all, one request in flight (so a retried batch cannot overtake the next).
 *
 * Partitions are chosen here, from the count the topic provisioner follows, and heartbeats
 * carry that count: a consumer reading fewer partitions learns it from the heartbeats before
 * any heartbeat vouches for an event on a new one. KafkaJS silently drops messages for a
 * partition its cached metadata does not have yet; so the broker's answer must name every
 * partition sent to, or the send fails (and a new producer, with fresh metadata, retries it).
 */
@Injectable()
export class KafkaRevocationSink implements RevocationSink {
  private readonly topic: string;
  /** `SEND_DEADLINE_MS`; unit tests shorten it. */
  sendDeadlineMs = SEND_DEADLINE_MS;

  constructor(
    @Inject(REVOCATION_KAFKA_CLIENT) private readonly client: ClientKafka,
    private readonly topics: TopicProvisioner,
    @Inject(topicSettings.KEY) { topic }: TopicSettings,
  ) {
    this.topic = topic;
  }

  async publish(events: OutgoingMessage[], deadLetters: OutgoingMessage[]): Promise<void> {
    const partitions = this.partitions();
    const routed: Message[] = events.map((event) => ({
      ...event,
      partition: partitionOf(event.key ?? '', partitions),
    }));
    const topicMessages: TopicMessages[] = [];
    if (routed.length > 0) topicMessages.push({ topic: this.topic, messages: routed });
    if (deadLetters.length > 0)
      topicMessages.push({ topic: deadLetterTopic(this.topic), messages: deadLetters });
    await this.resetOnFailure(async () => {
      const producer = await this.client.connect();
      const answer = await producer.sendBatch({ acks: -1, topicMessages });
      this.expectEvery(answer, new Set(routed.map((message) => message.partition ?? -1)));
    });
  }

  /** Sends `heartbeat` to every partition; resolves with how many that was. */
  async heartbeat(heartbeat: Omit<Heartbeat, 'partitions'>): Promise<number> {
    const partitions = this.partitions();
    await this.resetOnFailure(async () => {
      const producer = await this.client.connect();
      const answer = await producer.send({
        topic: this.topic,
        acks: -1,
        messages: Array.from({ length: partitions }, (_, partition) =>
          encodeHeartbeat({ ...heartbeat, partitions }, partition),
        ),
      });
      this.expectEvery(answer, new Set(Array.from({ length: partitions }, (_, p) => p)));
    });
    return partitions;
  }

  refusesForGood(error: unknown): boolean {
    // KafkaJS wraps the broker's error (cause, or the errors of an aggregate).
    const seen = new Set<unknown>();
    const visit = (value: unknown): boolean => {
      if (typeof value !== 'object' || value === null || seen.has(value)) return false;
      seen.add(value);
      const { type, cause, errors } = value as {
        type?: unknown;
        cause?: unknown;
        errors?: unknown;
      };
      if (typeof type === 'string' && REFUSED_FOR_GOOD.has(type)) return true;
      return visit(cause) || (Array.isArray(errors) && errors.some(visit));
    };
    return visit(error);
  }

  private partitions(): number {
    const count = this.topics.partitions;
    if (count === undefined) throw new Error('the revocation topic is not provisioned yet');
    return count;
  }

  private expectEvery(answer: RecordMetadata[], partitions: Set<number>): void {
    const acknowledged = new Set(
      answer.filter((record) => record.topicName === this.topic).map((record) => record.partition),
    );
    const missing = [...partitions].filter((partition) => !acknowledged.has(partition));
    if (missing.length > 0)
      throw new Error(
        `the producer does not know partition(s) ${missing.join(', ')} of ${this.topic} yet`,
      );
  }

  /**
   * After a failed send the idempotent producer's sequence numbers may be ahead of what the
   * broker holds, and every later send would fail with OUT_OF_ORDER_SEQUENCE_NUMBER (KafkaJS
   * does not recover from that). A new producer gets a new producer id, fresh sequences and
   * fresh metadata; the relay's retry may then duplicate what the broker did keep, which
   * at-least-once allows. So does a send not acknowledged within `sendDeadlineMs`.
   */
  private async resetOnFailure(send: () => Promise<void>): Promise<void> {
    // Aborted at the end: neither wait below outlives the send.
    const timers = new AbortController();
    const timer = { signal: timers.signal };
    try {
      await Promise.race([send(), this.deadline(timers.signal)]);
    } catch (error) {
      const closing = [this.client.close(), sleep(RESET_TIMEOUT_MS, undefined, timer)];
      await Promise.race(closing).catch(() => undefined);
      throw error;
    } finally {
      timers.abort();
    }
  }

  /** Rejects after `sendDeadlineMs` (never once `signal` is aborted). */
  private async deadline(signal: AbortSignal): Promise<never> {
    await sleep(this.sendDeadlineMs, undefined, { signal }).catch(() => undefined);
    if (!signal.aborted)
      throw new Error(`Kafka did not acknowledge the send within ${this.sendDeadlineMs} ms`);
    return new Promise<never>(() => undefined);
  }
}
