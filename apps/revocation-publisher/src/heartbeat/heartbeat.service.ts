import {
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { PeriodicTask } from '@app/observability';
import type { RevocationPublisherEnv } from '../config';
import { KafkaRevocationSink } from '../kafka/kafka-revocation.sink';
import { TopicProvisioner } from '../kafka/topic-provisioner';
import { OutboxStore } from '../outbox/outbox.store';
import { PublisherMetrics } from '../publisher.metrics';
import { OutboxRelay } from '../relay/outbox-relay.service';

/**
 * Sends a heartbeat to every partition at a fixed interval, carrying this publisher's clock.
 * Only while the relay owns shards and read the outbox recently: a heartbeat tells consumers
 * "nothing older than this is still waiting with me".
 */
@Injectable()
export class HeartbeatService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(HeartbeatService.name);
  private readonly intervalMs: number;
  private readonly healthyWithinMs: number;
  private readonly ticker: PeriodicTask;
  private failing = false;

  constructor(
    private readonly sink: KafkaRevocationSink,
    private readonly topics: TopicProvisioner,
    private readonly relay: OutboxRelay,
    private readonly outbox: OutboxStore,
    private readonly metrics: PublisherMetrics,
    config: ConfigService<RevocationPublisherEnv, true>,
  ) {
    this.intervalMs = config.get('HEARTBEAT_INTERVAL_MS', { infer: true });
    this.healthyWithinMs = config.get('OUTBOX_BLOCK_MS', { infer: true }) + 2 * this.intervalMs;
    this.ticker = new PeriodicTask(this.intervalMs, () => this.beat());
  }

  onApplicationBootstrap(): void {
    this.ticker.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.ticker.stop();
  }

  private beat(): Promise<void> | undefined {
    const partitions = this.topics.partitions;
    if (partitions === undefined || !this.relay.isHealthy(this.healthyWithinMs)) return undefined;
    const heartbeat = {
      publisher_id: this.outbox.consumer,
      sent_at: Date.now(),
      interval_ms: this.intervalMs,
    };
    return this.sink
      .heartbeat(heartbeat, partitions)
      .then(() => {
        this.metrics.heartbeats.inc();
        if (this.failing) this.logger.log('heartbeats flowing again');
        this.failing = false;
      })
      .catch((error: unknown) => {
        if (!this.failing) this.logger.warn(`heartbeat failed: ${(error as Error).message}`);
        this.failing = true;
      });
  }
}
