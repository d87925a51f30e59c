import type { ServiceHandle } from '../lib/process.mjs';

// Types for the test files that import the Kafka launcher.
export const singleNodeSettings: Record<string, string>;
export function kraftClusterId(): string;
export interface KafkaSecurity {
  /** SCRAM-SHA-512 users and their passwords; `admin` may do anything. */
  users: Record<string, string>;
  /** The client listener over TLS (a CA and certificate made with openssl). */
  tls?: boolean;
}
export interface KafkaClientSecurity {
  ssl?: { ca: string[] };
  sasl?: { mechanism: 'scram-sha-512'; username: string; password: string };
}
export interface KafkaHandle extends ServiceHandle {
  brokers: string;
  /** The CA of a TLS broker, for KAFKA_SSL_CA_FILE. */
  caFile?: string;
  /** KafkaJS `ssl` and `sasl` for one of the users (empty on a plain broker). */
  clientSecurity(user: string): KafkaClientSecurity;
}
export function startKafka(options?: {
  port?: number;
  controllerPort?: number;
  dataDir?: string;
  heap?: string;
  log?: (message: string) => void;
  readyTimeoutMs?: number;
  security?: KafkaSecurity;
}): Promise<KafkaHandle>;
