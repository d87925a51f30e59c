import type { ServiceHandle } from '../lib/process.mjs';

// Types for the test files that import the Redis launcher.
export interface RedisHandle extends ServiceHandle {
  url: string;
}
export function startRedis(options?: {
  port?: number;
  dataDir?: string;
  appendfsync?: 'always' | 'everysec' | 'no';
  /** More redis-server arguments, e.g. `['--replicaof', '127.0.0.1', '6380']`. */
  args?: string[];
  log?: (message: string) => void;
}): Promise<RedisHandle>;
