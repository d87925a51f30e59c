import { httpEnv, instanceId, kafkaEnv, kafkaEnvRules, positiveInt, redisEnv } from '@app/config';
import { DEFAULT_OUTBOX_SHARDS, REVOCATION_TOPIC } from '@app/contracts';
import { z } from 'zod';

/** Environment of the revocation-publisher; see README.md for every variable. */
export const revocationPublisherEnv = httpEnv(3001)
  .extend(redisEnv.shape)
  .extend(kafkaEnv.shape)
  .extend({
    INSTANCE_ID: instanceId(
      'names this instance in the outbox group, leases and heartbeats; default: host name and a random suffix, new at every start',
    ),
    REDIS_KEY_PREFIX: z
      .string()
      .default('sr:')
      .describe("prefix of every Redis key (the session service's)"),
    OUTBOX_SHARDS: positiveInt
      .max(16_384)
      .default(DEFAULT_OUTBOX_SHARDS)
      .describe("outbox streams (the session service's)"),
    OUTBOX_BATCH_SIZE: positiveInt
      .max(10_000)
      .default(500)
      .describe('entries read from each shard at a time'),
    OUTBOX_BATCH_MAX_BYTES: positiveInt
      .min(1_024)
      .max(100 * 1024 * 1024)
      .default(512 * 1024)
      .describe('largest request to the broker; a larger batch goes in several'),
    OUTBOX_BLOCK_MS: positiveInt
      .max(10_000)
      .default(250)
      .describe(
        'longest a read waits for new entries (heartbeats vouch for the start of the last read)',
      ),
    OUTBOX_LINGER_MS: z.coerce
      .number()
      .int()
      .min(0)
      .max(1_000)
      .default(0)
      .describe(
        'after a first entry, how long to wait for more to send together (0: send at once; bursts batch by themselves)',
      ),
    OUTBOX_LEASE_MS: positiveInt
      .min(1_000)
      .default(10_000)
      .describe('a shard whose owner has not renewed its lease for this long is taken over'),
    REVOCATION_TOPIC: z
      .string()
      .min(1)
      .default(REVOCATION_TOPIC)
      .describe('the topic (its `.dlq` receives dead letters)'),
    TOPIC_PARTITIONS: positiveInt
      .max(10_000)
      .default(12)
      .describe('partitions of the topic when the publisher creates it (more may be added later)'),
    // Unset: the cluster's own defaults, so a topic on a replicated cluster is never created
    // with fewer replicas than the cluster gives every other topic.
    TOPIC_REPLICATION_FACTOR: positiveInt
      .optional()
      .describe("replicas of each partition; unset: the cluster's `default.replication.factor`"),
    TOPIC_MIN_INSYNC_REPLICAS: positiveInt
      .optional()
      .describe(
        "replicas that must have a write before the broker acknowledges it (acks=all); unset: the cluster's `min.insync.replicas`",
      ),
    TOPIC_METADATA_REFRESH_MS: positiveInt
      .min(100)
      .default(5_000)
      .describe(
        "how often the topic's partition count is read again (partitions added while running)",
      ),
    ACCESS_TOKEN_MAX_TTL_SECONDS: positiveInt
      .default(300)
      .describe(
        'the longest access-token lifetime of any issuer: the topic keeps at least this much',
      ),
    RETENTION_MARGIN_SECONDS: positiveInt.default(600).describe('kept on the topic beyond that'),
    HEARTBEAT_INTERVAL_MS: positiveInt
      .min(50)
      .default(1_000)
      .describe('one heartbeat per partition this often'),
    PUBLISH_RETRY_INITIAL_MS: positiveInt
      .default(100)
      .describe('first wait before sending a refused batch again (then doubling)'),
    PUBLISH_RETRY_MAX_MS: positiveInt.default(5_000).describe('longest such wait'),
  })
  .superRefine(kafkaEnvRules);

export type RevocationPublisherEnv = z.output<typeof revocationPublisherEnv>;
