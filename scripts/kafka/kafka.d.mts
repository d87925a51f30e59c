// Types for the test files that import the Kafka launcher.
export const singleNodeSettings: Record<string, string>;
export function kraftClusterId(): string;
export interface KafkaHandle {
  brokers: string;
  port: number;
  dataDir: string;
  readonly pid: number;
  isAlive(): boolean;
  stop(): Promise<unknown>;
  kill(): Promise<unknown>;
  restart(): Promise<void>;
}
export function startKafka(options?: {
  port?: number;
  controllerPort?: number;
  dataDir?: string;
  heap?: string;
  log?: (message: string) => void;
  readyTimeoutMs?: number;
}): Promise<KafkaHandle>;
