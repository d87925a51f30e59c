import {
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
  Inject,
} from '@nestjs/common';
import { PeriodicTask } from '@app/observability';
import { KafkaRevocationSink } from '../kafka/kafka-revocation.sink';
import { OutboxStore } from '../outbox/outbox.store';
import { PublisherMetrics } from '../publisher.metrics';
import { OutboxRelay } from '../relay/outbox-relay.service';
import { topicSettings, type TopicSettings } from '../publisher.settings';

/**
 * Sends a heartbeat to every partition at a fixed interval, while this instance relays shards.
 * Its `sent_at` is not the time of sending but the instant the relay vouches for: everything
 * written to the outbox before it is on the topic ahead of the heartbeat. A stalled relay
 * therefore keeps sending old instants, and every consumer's staleness bound holds exactly.
 */
@Injectable()
export class HeartbeatService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(HeartbeatService.name);
  private readonly intervalMs: number;
  private readonly ticker: PeriodicTask;
  private failing = false;

  constructor(
    private readonly sink: KafkaRevocationSink,
    private readonly relay: OutboxRelay,
    private readonly outbox: OutboxStore,
    private readonly metrics: PublisherMetrics,
    @Inject(topicSettings.KEY) { heartbeatIntervalMs }: TopicSettings,
  ) {
    this.intervalMs = heartbeatIntervalMs;
    this.ticker = new PeriodicTask(this.intervalMs, () => this.beat());
  }

  onApplicationBootstrap(): void {
    this.ticker.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.ticker.stop();
  }

  private beat(): Promise<void> | undefined {
    const vouchedAt = this.relay.vouchedAt();
    if (vouchedAt === undefined) return undefined;
    return this.sink
      .heartbeat({
        publisher_id: this.outbox.consumer,
        sent_at: vouchedAt,
        interval_ms: this.intervalMs,
      })
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
