import type { ConfigType } from '@nestjs/config';
import { featureSettings } from '@app/config/nest';
import { revocationPublisherEnv } from './config';

/** The outbox and its relay: where to read, how much at a time, leases, retries. */
export const outboxSettings = featureSettings('outbox', revocationPublisherEnv, (env) => ({
  layout: { prefix: env.REDIS_KEY_PREFIX, shards: env.OUTBOX_SHARDS },
  instanceId: env.INSTANCE_ID,
  batch: env.OUTBOX_BATCH_SIZE,
  maxBytes: env.OUTBOX_BATCH_MAX_BYTES,
  blockMs: env.OUTBOX_BLOCK_MS,
  lingerMs: env.OUTBOX_LINGER_MS,
  leaseMs: env.OUTBOX_LEASE_MS,
  retryInitialMs: env.PUBLISH_RETRY_INITIAL_MS,
  retryMaxMs: env.PUBLISH_RETRY_MAX_MS,
}));
export type OutboxSettings = ConfigType<typeof outboxSettings>;

/** The revocation topic and its dead-letter topic, as the publisher creates and watches them. */
export const topicSettings = featureSettings('topic', revocationPublisherEnv, (env) => ({
  topic: env.REVOCATION_TOPIC,
  partitions: env.TOPIC_PARTITIONS,
  replicationFactor: env.TOPIC_REPLICATION_FACTOR,
  minInsyncReplicas: env.TOPIC_MIN_INSYNC_REPLICAS,
  // Kept as long as the longest-lived access token may be presented, and a margin.
  retentionMs: (env.ACCESS_TOKEN_MAX_TTL_SECONDS + env.RETENTION_MARGIN_SECONDS) * 1000,
  metadataRefreshMs: env.TOPIC_METADATA_REFRESH_MS,
  heartbeatIntervalMs: env.HEARTBEAT_INTERVAL_MS,
}));
export type TopicSettings = ConfigType<typeof topicSettings>;
