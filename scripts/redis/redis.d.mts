// Types for the test files that import the Redis launcher.
export interface RedisHandle {
  url: string;
  port: number;
  dataDir: string;
  readonly pid: number;
  isAlive(): boolean;
  stop(): Promise<unknown>;
  kill(): Promise<unknown>;
  restart(): Promise<void>;
}
export function startRedis(options?: {
  port?: number;
  dataDir?: string;
  appendfsync?: 'always' | 'everysec' | 'no';
  log?: (message: string) => void;
}): Promise<RedisHandle>;
