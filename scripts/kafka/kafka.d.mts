import type { ServiceHandle } from '../lib/process.mjs';

// Types for the test files that import the Kafka launcher.
export const singleNodeSettings: Record<string, string>;
export function kraftClusterId(): string;
export interface KafkaHandle extends ServiceHandle {
  brokers: string;
}
export function startKafka(options?: {
  port?: number;
  controllerPort?: number;
  dataDir?: string;
  heap?: string;
  log?: (message: string) => void;
  readyTimeoutMs?: number;
}): Promise<KafkaHandle>;
