import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { deadLetterTopic, retry, type BackoffOptions } from '@app/contracts';
import { ensureTopics, type TopicSpec } from '@app/kafka';
import { KAFKA } from '@app/kafka/nest';
import { PeriodicTask, type ReadinessCheck } from '@app/observability';
import type { Admin, Kafka } from 'kafkajs';
import { topicSettings, type TopicSettings } from '../publisher.settings';

const DEAD_LETTER_RETENTION_MS = 7 * 24 * 3600 * 1000;
/** Waits between attempts to provision the topics while Kafka is unreachable. */
const PROVISION_BACKOFF: BackoffOptions = { initialMs: 250, maxMs: 5_000 };

/**
 * Creates the revocation topic and its dead-letter topic at start (idempotent), retrying in
 * the background while Kafka is unreachable; the app is not ready until they exist. Then
 * follows the revocation topic's partition count (partitions may be added to a running
 * system): revocations and heartbeats go to every partition it has.
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
  private readonly watch: PeriodicTask;
  private admin: Admin | undefined;
  /** Partitions of the revocation topic, once known; it only grows (Kafka never removes any). */
  partitions: number | undefined;

  constructor(
    @Inject(KAFKA) private readonly kafka: Kafka,
    @Inject(topicSettings.KEY) settings: TopicSettings,
  ) {
    const { topic, replicationFactor, retentionMs } = settings;
    this.topic = topic;
    // Unset, the cluster's own replication factor and min.insync.replicas apply: a replicated
    // cluster's (3 and 2) protect the topic without the publisher being told.
    const minInsync: Record<string, string> =
      settings.minInsyncReplicas === undefined
        ? {}
        : { 'min.insync.replicas': String(settings.minInsyncReplicas) };
    this.watch = new PeriodicTask(settings.metadataRefreshMs, () => this.refreshPartitions());
    this.specs = [
      {
        topic,
        numPartitions: settings.partitions,
        ...(replicationFactor === undefined ? {} : { replicationFactor }),
        configEntries: {
          'cleanup.policy': 'delete',
          'retention.ms': String(retentionMs),
          ...minInsync,
          // Heartbeats make many small segments; roll hourly at most so retention can drop them.
          'segment.ms': String(Math.min(retentionMs, 3_600_000)),
        },
      },
      {
        topic: deadLetterTopic(topic),
        numPartitions: 1,
        ...(replicationFactor === undefined ? {} : { replicationFactor }),
        configEntries: {
          'cleanup.policy': 'delete',
          'retention.ms': String(DEAD_LETTER_RETENTION_MS),
          ...minInsync,
        },
      },
    ];
  }

  onApplicationBootstrap(): void {
    this.work = this.provision().then(() => {
      if (!this.stop.signal.aborted) this.watch.start();
    });
  }

  async onApplicationShutdown(): Promise<void> {
    this.stop.abort();
    await this.work;
    await this.watch.stop();
    await this.admin?.disconnect().catch(() => undefined);
  }

  check(): Promise<Record<string, unknown>> {
    if (this.partitions === undefined)
      return Promise.reject(new Error('topics not provisioned yet'));
    return Promise.resolve({ topic: this.topic, partitions: this.partitions });
  }

  /** Resolves once the topics exist, or when stopped. */
  private async provision(): Promise<void> {
    if (this.stop.signal.aborted) return;
    await retry(
      async () => {
        const admin = this.kafka.admin();
        try {
          await admin.connect();
          const created = await ensureTopics(admin, this.specs);
          if (created.length > 0) this.logger.log(`created topics ${created.join(', ')}`);
          await this.readPartitions(admin);
        } finally {
          await admin.disconnect().catch(() => undefined);
        }
      },
      {
        ...PROVISION_BACKOFF,
        signal: this.stop.signal,
        onRetry: ({ attempt, error }) => {
          if (attempt === 1)
            this.logger.warn(`cannot provision topics yet, retrying: ${(error as Error).message}`);
        },
      },
    ).catch(() => undefined); // retried until it works: it fails only when stopped
  }

  private refreshPartitions(): Promise<void> {
    this.admin ??= this.kafka.admin();
    const admin = this.admin;
    return admin
      .connect()
      .then(() => this.readPartitions(admin))
      .catch((error: unknown) => {
        // Kafka unreachable: the count stays as it was; the next tick tries again.
        this.logger.debug(`cannot read the topic's partitions: ${(error as Error).message}`);
        this.admin = undefined;
        void admin.disconnect().catch(() => undefined);
      });
  }

  private async readPartitions(admin: Admin): Promise<void> {
    const metadata = await admin.fetchTopicMetadata({ topics: [this.topic] });
    const count = metadata.topics[0]?.partitions.length;
    if (count === undefined || count <= (this.partitions ?? 0)) return;
    if (this.partitions !== undefined)
      this.logger.log(`${this.topic} grew from ${this.partitions} to ${count} partitions`);
    this.partitions = count;
  }
}
