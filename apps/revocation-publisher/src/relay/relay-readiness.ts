import { Inject, Injectable } from '@nestjs/common';
import type { ReadinessCheck } from '@app/observability';
import { outboxSettings, type OutboxSettings } from '../publisher.settings';
import { OutboxRelay } from './outbox-relay.service';

/**
 * Readiness of the relay itself, not only of its dependencies: a relay that keeps failing
 * (its Redis answers but its commands fail, e.g. NOGROUP) is not ready, whatever Redis and
 * Kafka say. Shows the shards it relays and the instant its heartbeats vouch for.
 */
@Injectable()
export class RelayReadiness implements ReadinessCheck {
  readonly name = 'relay';
  private readonly toleranceMs: number;

  constructor(
    private readonly relay: OutboxRelay,
    @Inject(outboxSettings.KEY) { blockMs, leaseMs }: OutboxSettings,
  ) {
    // A healthy loop goes round at least every blocking read or lease third.
    this.toleranceMs = blockMs + leaseMs / 3 + 5_000;
  }

  check(): Promise<Record<string, unknown>> {
    const ago = this.relay.healthyAgoMs();
    if (ago > this.toleranceMs)
      return Promise.reject(new Error(`relay failing for ${Math.round(ago / 1000)} s`));
    const vouchedAt = this.relay.vouchedAt();
    return Promise.resolve({
      shards: this.relay.ownedShards(),
      vouchedAgoMs: vouchedAt === undefined ? null : Date.now() - vouchedAt,
    });
  }
}
