import { httpEnv, kafkaEnv, kafkaEnvRules, positiveInt, redisEnv } from '@app/config';
import { DEFAULT_OUTBOX_SHARDS, REVOCATION_TOPIC } from '@app/contracts';
import { z } from 'zod';

/** Environment of the revocation-publisher; see README.md for every variable. */
export const revocationPublisherEnv = httpEnv(3001)
  .extend(redisEnv.shape)
  .extend(kafkaEnv.shape)
  .extend({
    /**
     * Names this instance in the outbox consumer group, leases and heartbeats. Default: the
     * host name and a random suffix, new at every start (replicas started alike, e.g. each
     * process 1 of its container, must never share one).
     */
    INSTANCE_ID: z.string().min(1).max(100).optional(),
    REDIS_KEY_PREFIX: z.string().default('sr:'),
    OUTBOX_SHARDS: positiveInt.max(16_384).default(DEFAULT_OUTBOX_SHARDS),
    OUTBOX_BATCH_SIZE: positiveInt.max(10_000).default(500),
    /** Largest request to the broker (bytes); a larger batch goes in several. */
    OUTBOX_BATCH_MAX_BYTES: positiveInt
      .min(1_024)
      .max(100 * 1024 * 1024)
      .default(512 * 1024),
    /** Longest a read waits for new entries; heartbeats vouch for the start of the last read. */
    OUTBOX_BLOCK_MS: positiveInt.max(10_000).default(250),
    OUTBOX_LINGER_MS: z.coerce.number().int().min(0).max(1_000).default(2),
    /** A shard whose owner has not renewed its lease for this long is taken over. */
    OUTBOX_LEASE_MS: positiveInt.min(1_000).default(10_000),
    REVOCATION_TOPIC: z.string().min(1).default(REVOCATION_TOPIC),
    TOPIC_PARTITIONS: positiveInt.max(10_000).default(12),
    TOPIC_REPLICATION_FACTOR: positiveInt.default(1),
    TOPIC_MIN_INSYNC_REPLICAS: positiveInt.default(1),
    /** How often the topic's partition count is read again (partitions added while running). */
    TOPIC_METADATA_REFRESH_MS: positiveInt.min(100).default(5_000),
    /** The longest access-token lifetime any issuer uses; the topic keeps at least this much. */
    ACCESS_TOKEN_MAX_TTL_SECONDS: positiveInt.default(300),
    RETENTION_MARGIN_SECONDS: positiveInt.default(600),
    HEARTBEAT_INTERVAL_MS: positiveInt.min(50).default(1_000),
    /** Backoff while Kafka refuses a batch: doubles from the first up to the cap. */
    PUBLISH_RETRY_INITIAL_MS: positiveInt.default(100),
    PUBLISH_RETRY_MAX_MS: positiveInt.default(5_000),
  })
  .superRefine(kafkaEnvRules);

export type RevocationPublisherEnv = z.output<typeof revocationPublisherEnv>;
