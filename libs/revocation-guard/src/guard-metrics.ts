import { Counter, Gauge, Registry } from 'prom-client';
import type { PartitionFreshness } from './view/freshness';
import type { RevocationStore } from '@app/contracts';
import type { VerifiedTokenCache } from './verification/verified-token-cache';

export type RejectionReason =
  | 'missing_token'
  | 'invalid_token'
  | 'session_revoked'
  | 'user_revoked'
  | 'stale_view'
  | 'not_ready'
  | 'insufficient_role';

/** The guard's Prometheus metrics, on the app's registry (or a private one). */
export class GuardMetrics {
  readonly eventsApplied: Counter<'kind' | 'result'>;
  readonly invalidMessages: Counter;
  readonly rejections: Counter<'reason'>;
  readonly verifications: Counter<'result'>;
  /** Bound children of `verifications`: no label lookup on the request path. */
  readonly cacheHits: { inc(): void };
  readonly cacheMisses: { inc(): void };
  readonly servedStale: Counter;
  readonly consumerRestarts: Counter;

  constructor(
    readonly registry: Registry,
    sources: { store: RevocationStore; freshness: PartitionFreshness; cache: VerifiedTokenCache },
  ) {
    const registers = [registry];
    this.eventsApplied = new Counter({
      name: 'revocation_guard_events_total',
      help: 'Messages read from the revocation topic, by kind and by what they did (applied, duplicate, stale)',
      labelNames: ['kind', 'result'],
      registers,
    });
    this.invalidMessages = new Counter({
      name: 'revocation_guard_invalid_messages_total',
      help: 'Messages that failed the contract, parked in the dead-letter topic',
      registers,
    });
    this.rejections = new Counter({
      name: 'revocation_guard_rejections_total',
      help: 'Requests refused by the guard, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.verifications = new Counter({
      name: 'revocation_guard_token_verifications_total',
      help: 'Tokens checked, by whether the verified-token cache answered (hit) or the signature was verified (miss)',
      labelNames: ['result'],
      registers,
    });
    this.cacheHits = this.verifications.labels({ result: 'hit' });
    this.cacheMisses = this.verifications.labels({ result: 'miss' });
    this.servedStale = new Counter({
      name: 'revocation_guard_served_stale_total',
      help: 'Requests served on a stale revocation view (only when configured to fail open)',
      registers,
    });
    this.consumerRestarts = new Counter({
      name: 'revocation_guard_consumer_restarts_total',
      help: 'Consumers replaced as stuck on a broker that does not answer (partitions falling behind the others, or silent after a request timeout)',
      registers,
    });
    new Gauge({
      name: 'revocation_guard_store_entries',
      help: 'Revocations held in memory: revoked sessions, and users with a log-out-everywhere instant',
      labelNames: ['type'],
      registers,
      collect() {
        const size = sources.store.size();
        this.set({ type: 'session' }, size.sessions);
        this.set({ type: 'user' }, size.users);
      },
    });
    new Gauge({
      name: 'revocation_guard_view_age_seconds',
      help: 'Age of the last heartbeat of the stalest partition (+Inf when one was never heard from)',
      registers,
      collect() {
        this.set(sources.freshness.report().stalestAgeMs / 1000);
      },
    });
    new Gauge({
      name: 'revocation_guard_view_fresh',
      help: '1 while every partition had a heartbeat within the freshness bound, else 0',
      registers,
      collect() {
        this.set(sources.freshness.isFresh() ? 1 : 0);
      },
    });
    new Gauge({
      name: 'revocation_guard_verified_token_cache_entries',
      help: 'Verified tokens remembered',
      registers,
      collect() {
        this.set(sources.cache.size);
      },
    });
  }
}
