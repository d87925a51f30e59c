import { CLOCK_TOLERANCE_SECONDS, REVOCATION_TOPIC, RevocationStore } from '@app/contracts';
import { createKafka, rotatingSeeds, type KafkaSecurity } from '@app/kafka';
import type { Kafka } from 'kafkajs';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { Registry } from 'prom-client';
import { Authenticator, rejection, type GuardOutcome, type GuardRejection } from './authenticator';
import { PartitionFreshness, type FreshnessReport } from './view/freshness';
import { GuardMetrics } from './guard-metrics';
import type { Logger } from './logger';
import { RemoteKeys } from './verification/remote-keys';
import { RevocationConsumer, type ReplayProgress } from './view/revocation-consumer';
import { RevocationListeners, type RevocationListener } from './view/revocation-listeners';
import { TokenVerifier } from './verification/token-verifier';
import { VerifiedTokenCache } from './verification/verified-token-cache';

export interface RevocationGuardOptions {
  /** Names this service in logs, metrics and dead letters, e.g. `content-api`. */
  serviceName: string;
  /** Names this instance; defaults to `<hostname>-<pid>`. The consumer group adds a random suffix. */
  instanceId?: string;
  /**
   * Kafka bootstrap servers; or pass `kafka`, a KafkaJS client of your own (then give it a
   * `brokers` function that returns the next seed at each call, e.g. `rotatingSeeds`, so a
   * consumer replaced because a broker stopped answering does not start from that broker).
   */
  brokers?: string[];
  /** TLS and SASL for `brokers` (KafkaJS's `ssl` and `sasl`); see `kafkaSecurity`. */
  kafkaSecurity?: KafkaSecurity;
  kafka?: Kafka;
  topic?: string;
  /** The issuer's JWKS, e.g. `http://127.0.0.1:3000/.well-known/jwks.json`. */
  jwksUrl: string;
  /** `iss` every token must carry, and the audience(s) it must be for (one of them). */
  issuer: string;
  audience: string | string[];
  /** The longest access-token lifetime of the issuer: how long revocations are kept and replayed. */
  accessTokenMaxTtlSeconds?: number;
  clockToleranceSeconds?: number;
  /** Guarded requests get 503 when a partition's last heartbeat is older than this (ms). */
  freshnessBoundMs?: number;
  /** Serve requests on a stale view instead of 503 (they are counted and marked). */
  failOpen?: boolean;
  /** Verified tokens remembered (LRU); 0 verifies the signature on every request. */
  verifiedTokenCacheSize?: number;
  /** Longest time a fetch waits on the broker when there is nothing new (ms). */
  fetchMaxWaitMs?: number;
  /**
   * Read the replay's history below KafkaJS's consumer (default true; see history-reader.ts):
   * what it cannot read it leaves to the consumer by itself. False: the consumer reads it all.
   */
  directReplay?: boolean;
  /** Prometheus registry for the guard's metrics (e.g. the app's); a private one otherwise. */
  registry?: Registry;
  logger?: Logger;
  now?: () => number;
}

export interface GuardHealth {
  ready: boolean;
  keys: { ready: boolean; count: number };
  replay: ReplayProgress;
  freshness: FreshnessReport & { failOpen: boolean };
  store: { sessions: number; users: number };
}

const DEFAULTS = {
  topic: REVOCATION_TOPIC,
  accessTokenMaxTtlSeconds: 300,
  clockToleranceSeconds: CLOCK_TOLERANCE_SECONDS,
  freshnessBoundMs: 10_000,
  failOpen: false,
  verifiedTokenCacheSize: 10_000,
  fetchMaxWaitMs: 100,
  directReplay: true,
};

const PRUNE_INTERVAL_MS = 30_000;

const consoleLogger: Logger = {
  log: (message) => {
    console.log(message);
  },
  warn: (message) => {
    console.warn(message);
  },
  error: (message) => {
    console.error(message);
  },
};

/**
 * Revocation-aware authentication for any Node service: receives every revocation through
 * Kafka into memory, and answers, for each request, whether its access token is valid and
 * not revoked — with no network I/O on the request path. Framework-free; the NestJS module,
 * and the Express and Fastify middleware, are thin wrappers over it.
 *
 * ```ts
 * const guard = createRevocationGuard({ serviceName: 'billing', brokers, jwksUrl, issuer, audience });
 * await guard.start(); // resolves once the keys are loaded and the revocation window replayed
 * const outcome = await guard.authenticate(request.headers.authorization);
 * ```
 */
export class RevocationGuard {
  readonly store: RevocationStore;
  readonly freshness: PartitionFreshness;
  readonly metrics: GuardMetrics;
  private readonly keys: RemoteKeys;
  private readonly authenticator: Authenticator;
  private readonly consumer: RevocationConsumer;
  private readonly listeners: RevocationListeners;
  private readonly failOpen: boolean;
  private readonly logger: Logger;
  private readonly abort = new AbortController();
  private pruneTimer: NodeJS.Timeout | undefined;
  private isReady = false;
  private started: Promise<void> | undefined;
  private lastStaleWarning = -Infinity;
  private readonly now: () => number;

  constructor(options: RevocationGuardOptions) {
    // Options given as undefined take the default, as if left out.
    const settings = { ...DEFAULTS, ...withoutUndefined(options) };
    this.now = settings.now ?? Date.now;
    this.logger = settings.logger ?? consoleLogger;
    this.failOpen = settings.failOpen;
    const tolerance = settings.clockToleranceSeconds;
    // A revocation matters while a token it rejects may still be accepted: the longest
    // lifetime, the clock tolerance, and the one second an `iat` may be moved ahead.
    const retentionMs = (settings.accessTokenMaxTtlSeconds + tolerance + 1) * 1000;
    this.store = new RevocationStore({ retentionMs, now: this.now });
    this.freshness = new PartitionFreshness({ boundMs: settings.freshnessBoundMs, now: this.now });
    const cache = new VerifiedTokenCache({
      maxEntries: settings.verifiedTokenCacheSize,
      now: this.now,
    });
    this.metrics = new GuardMetrics(settings.registry ?? new Registry(), {
      store: this.store,
      freshness: this.freshness,
      cache,
    });
    this.keys = new RemoteKeys({ url: settings.jwksUrl, logger: this.logger });
    const verifier = new TokenVerifier({
      keys: this.keys.resolver,
      issuer: settings.issuer,
      audience: settings.audience,
      clockToleranceSeconds: tolerance,
      maxTokenAgeSeconds: settings.accessTokenMaxTtlSeconds,
      cache,
      now: this.now,
    });
    this.authenticator = new Authenticator({
      verifier,
      store: this.store,
      freshness: this.freshness,
      metrics: this.metrics,
      failOpen: this.failOpen,
      onServedStale: () => {
        this.warnServingStale();
      },
    });
    const instanceId = settings.instanceId ?? `${hostname()}-${process.pid}`;
    const kafka =
      settings.kafka ??
      createKafka({
        // A consumer replaced because a broker stopped answering starts from the next seed.
        brokers: rotatingSeeds(settings.brokers ?? ['127.0.0.1:9092']),
        clientId: `${settings.serviceName}-${instanceId}`,
        config: settings.kafkaSecurity ?? {},
        logger: this.logger,
      });
    this.listeners = new RevocationListeners(this.logger);
    this.consumer = new RevocationConsumer({
      kafka,
      topic: settings.topic,
      groupId: `${settings.serviceName}.revocations.${instanceId}.${randomUUID().slice(0, 8)}`,
      instanceName: `${settings.serviceName}/${instanceId}`,
      replayWindowMs: retentionMs,
      fetchMaxWaitMs: settings.fetchMaxWaitMs,
      directReplay: settings.directReplay,
      // A consumer stuck on a broker that does not answer is replaced (RevocationConsumer.watch).
      stallMs: settings.freshnessBoundMs / 2,
      store: this.store,
      freshness: this.freshness,
      metrics: this.metrics,
      logger: this.logger,
      onRevocation: (applied) => {
        this.listeners.notify(applied);
      },
      listening: () => this.listeners.size > 0,
      now: this.now,
    });
  }

  /**
   * Loads the issuer's keys and replays the revocation window; resolves when both are done
   * (retrying while Kafka or the issuer are unreachable). Requests before that get 503.
   */
  start(): Promise<void> {
    this.started ??= (async () => {
      this.pruneTimer = setInterval(() => this.store.prune(), PRUNE_INTERVAL_MS);
      this.pruneTimer.unref();
      await Promise.all([
        this.keys.start(this.abort.signal),
        this.consumer.start().then(() => this.consumer.replayed),
      ]);
      this.isReady = true;
    })();
    return this.started;
  }

  async stop(): Promise<void> {
    this.abort.abort();
    clearInterval(this.pruneTimer);
    this.keys.stop();
    await this.consumer.stop();
  }

  get ready(): boolean {
    return this.isReady;
  }

  /**
   * Decides one request from its `Authorization` header. On a token seen before this is a
   * map lookup and the revocation check; a new token costs one signature verification.
   * `requiredRoles`: every one must be in the token's `roles` (else 403).
   */
  authenticate(
    authorization: string | string[] | undefined,
    requiredRoles: readonly string[] = [],
  ): Promise<GuardOutcome> {
    return Promise.resolve(this.decide(authorization, requiredRoles));
  }

  /**
   * {@link authenticate} for hot paths: the outcome itself when it is known without waiting
   * (a token in the verified-token cache, or a rejection), a promise only otherwise.
   */
  decide(
    authorization: string | string[] | undefined,
    requiredRoles: readonly string[] = [],
  ): GuardOutcome | Promise<GuardOutcome> {
    if (!this.isReady) {
      this.metrics.rejections.inc({ reason: 'not_ready' });
      return rejection(503, 'not_ready', 'revocation view not loaded yet, retry shortly');
    }
    return this.authenticator.decide(authorization, requiredRoles);
  }

  /**
   * Calls `listener` with each revocation this instance applies from now on, once its store
   * holds it: the decoded event, when it was applied and whether it changed the store. Not
   * for the replay at start (history, read before the instance is ready) nor for heartbeats.
   * A listener that throws is logged and never stops consumption. Returns the unsubscribe.
   */
  onRevocation(listener: RevocationListener): () => void {
    return this.listeners.add(listener);
  }

  health(): GuardHealth {
    return {
      ready: this.isReady,
      keys: { ready: this.keys.ready, count: this.keys.size },
      replay: this.consumer.progress(),
      freshness: { ...this.freshness.report(), failOpen: this.failOpen },
      store: this.store.size(),
    };
  }

  private warnServingStale(): void {
    if (this.now() - this.lastStaleWarning < 10_000) return;
    this.lastStaleWarning = this.now();
    const { stalestAgeMs, stalestPartition } = this.freshness.report();
    this.logger.warn(
      `serving on a stale revocation view (fail-open): partition ${String(stalestPartition)} last heard ${Math.round(stalestAgeMs)} ms ago`,
    );
  }
}

export function createRevocationGuard(options: RevocationGuardOptions): RevocationGuard {
  return new RevocationGuard(options);
}

/** HTTP headers for a rejection: RFC 6750's challenge on 401 and 403, Retry-After on 503. */
export function rejectionHeaders(outcome: GuardRejection): Record<string, string> {
  const description = outcome.description.replaceAll('"', "'");
  switch (outcome.status) {
    case 401:
      // No credentials at all: a bare challenge, no error code (RFC 6750 §3.1).
      if (outcome.reason === 'missing_token') return { 'www-authenticate': 'Bearer' };
      return {
        'www-authenticate': `Bearer error="invalid_token", error_description="${description}"`,
      };
    case 403:
      return {
        'www-authenticate': `Bearer error="insufficient_scope", error_description="${description}"`,
      };
    case 503:
      return { 'retry-after': '1' };
  }
}

/** The JSON body for a rejection: `{ error, error_description }` (OAuth style). */
export function rejectionBody(outcome: GuardRejection): {
  error: string;
  error_description: string;
} {
  return { error: outcome.error, error_description: outcome.description };
}

function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, entry]) => entry !== undefined)) as T;
}
