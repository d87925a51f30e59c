import type { Admin, ITopicConfig } from 'kafkajs';

export interface TopicSpec {
  topic: string;
  numPartitions: number;
  /** Unset: the cluster's `default.replication.factor` (KafkaJS sends -1). */
  replicationFactor?: number;
  configEntries?: Record<string, string>;
}

/**
 * Creates the topics that do not exist yet; existing ones are left as they are (idempotent,
 * safe for several instances starting at once). Returns the names it created.
 */
export async function ensureTopics(admin: Admin, specs: TopicSpec[]): Promise<string[]> {
  const existing = new Set(await admin.listTopics());
  const missing: ITopicConfig[] = specs
    .filter((spec) => !existing.has(spec.topic))
    .map((spec) => ({
      topic: spec.topic,
      numPartitions: spec.numPartitions,
      ...(spec.replicationFactor === undefined
        ? {}
        : { replicationFactor: spec.replicationFactor }),
      configEntries: Object.entries(spec.configEntries ?? {}).map(([name, value]) => ({
        name,
        value,
      })),
    }));
  if (missing.length === 0) return [];
  // `createTopics` resolves false (not an error) when another instance created them first.
  await admin.createTopics({ topics: missing, waitForLeaders: true });
  return missing.map((spec) => spec.topic);
}
