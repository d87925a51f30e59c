import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { deadLetterTopic } from '@app/contracts';
import { ensureTopics, KAFKA, type TopicSpec } from '@app/kafka';
import type { ReadinessCheck } from '@app/observability';
import type { Kafka } from 'kafkajs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RevocationPublisherEnv } from '../config';

const DEAD_LETTER_RETENTION_MS = 7 * 24 * 3600 * 1000;

/**
 * Creates the revocation topic and its dead-letter topic at start (idempotent), retrying in
 * the background while Kafka is unreachable; the app is not ready until they exist.
 */
@Injectable()
export class TopicProvisioner
  implements OnApplicationBootstrap, OnApplicationShutdown, ReadinessCheck
{
  readonly name = 'topics';
  private readonly logger = new Logger(TopicProvisioner.name);
  private readonly specs: TopicSpec[];
  private readonly topic: string;
  private readonly stop = new AbortController();
  private work: Promise<void> | undefined;
  /** Partitions of the revocation topic, once known. */
  partitions: number | undefined;

  constructor(
    @Inject(KAFKA) private readonly kafka: Kafka,
    config: ConfigService<RevocationPublisherEnv, true>,
  ) {
    const topic = config.get('REVOCATION_TOPIC', { infer: true });
    this.topic = topic;
    const replicationFactor = config.get('TOPIC_REPLICATION_FACTOR', { infer: true });
    const minInsync = String(config.get('TOPIC_MIN_INSYNC_REPLICAS', { infer: true }));
    const retentionMs =
      (config.get('ACCESS_TOKEN_MAX_TTL_SECONDS', { infer: true }) +
        config.get('RETENTION_MARGIN_SECONDS', { infer: true })) *
      1000;
    this.specs = [
      {
        topic,
        numPartitions: config.get('TOPIC_PARTITIONS', { infer: true }),
        replicationFactor,
        configEntries: {
          'cleanup.policy': 'delete',
          'retention.ms': String(retentionMs),
          'min.insync.replicas': minInsync,
          // Heartbeats make many small segments; roll hourly at most so retention can drop them.
          'segment.ms': String(Math.min(retentionMs, 3_600_000)),
        },
      },
      {
        topic: deadLetterTopic(topic),
        numPartitions: 1,
        replicationFactor,
        configEntries: {
          'cleanup.policy': 'delete',
          'retention.ms': String(DEAD_LETTER_RETENTION_MS),
          'min.insync.replicas': minInsync,
        },
      },
    ];
  }

  onApplicationBootstrap(): void {
    this.work = this.provision();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stop.abort();
    await this.work;
  }

  check(): Promise<Record<string, unknown>> {
    if (this.partitions === undefined)
      return Promise.reject(new Error('topics not provisioned yet'));
    return Promise.resolve({ topic: this.topic, partitions: this.partitions });
  }

  private async provision(): Promise<void> {
    for (let attempt = 1; !this.stop.signal.aborted; attempt += 1) {
      const admin = this.kafka.admin();
      try {
        await admin.connect();
        const created = await ensureTopics(admin, this.specs);
        if (created.length > 0) this.logger.log(`created topics ${created.join(', ')}`);
        const metadata = await admin.fetchTopicMetadata({ topics: [this.topic] });
        this.partitions = metadata.topics[0]?.partitions.length;
        return;
      } catch (error) {
        if (attempt === 1)
          this.logger.warn(`cannot provision topics yet, retrying: ${(error as Error).message}`);
        await sleep(Math.min(5_000, 250 * attempt), undefined, { signal: this.stop.signal }).catch(
          () => undefined,
        );
      } finally {
        await admin.disconnect().catch(() => undefined);
      }
    }
  }
}
