import { Inject, Injectable } from '@nestjs/common';
import { METRICS_REGISTRY } from '@app/observability';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { OutboxStore } from './outbox/outbox.store';

@Injectable()
export class PublisherMetrics {
  readonly published: Counter;
  readonly deadLetters: Counter;
  readonly retries: Counter;
  readonly heartbeats: Counter;
  readonly latency: Histogram;
  readonly ownedShards: Gauge;
  readonly unpublishable: Counter;

  constructor(@Inject(METRICS_REGISTRY) registry: Registry, outbox: OutboxStore) {
    const registers = [registry];
    this.published = new Counter({
      name: 'publisher_events_published_total',
      help: 'Revocation events acknowledged by Kafka',
      registers,
    });
    this.deadLetters = new Counter({
      name: 'publisher_dead_letters_total',
      help: 'Outbox entries parked in the dead-letter topic',
      registers,
    });
    this.retries = new Counter({
      name: 'publisher_publish_retries_total',
      help: 'Batches Kafka refused and that were retried',
      registers,
    });
    this.heartbeats = new Counter({
      name: 'publisher_heartbeats_total',
      help: 'Heartbeat rounds sent (one message per partition)',
      registers,
    });
    this.latency = new Histogram({
      name: 'publisher_outbox_to_topic_seconds',
      help: 'From the outbox append to the broker acknowledgement, per event',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.unpublishable = new Counter({
      name: 'publisher_unpublishable_total',
      help: 'Dead letters even the dead-letter topic refused for good (dropped, logged)',
      registers,
    });
    this.ownedShards = new Gauge({
      name: 'publisher_owned_shards',
      help: 'Outbox shards this instance relays',
      registers,
    });
    // Both outbox gauges come from one Redis read per scrape: the first gauge collected
    // starts it, the second reuses it.
    let scrape: Promise<{ length: number; oldestAgeMs: number }> | undefined;
    const backlog = () => {
      scrape ??= outbox.backlog(Date.now()).finally(() => {
        setImmediate(() => (scrape = undefined));
      });
      return scrape;
    };
    new Gauge({
      name: 'publisher_outbox_length',
      help: 'Entries in the outbox not yet relayed (all shards)',
      registers,
      async collect() {
        this.set((await backlog()).length);
      },
    });
    new Gauge({
      name: 'publisher_outbox_oldest_age_seconds',
      help: 'Age of the oldest entry not yet relayed (0 when empty)',
      registers,
      async collect() {
        this.set((await backlog()).oldestAgeMs / 1000);
      },
    });
  }
}
