// Starts the project's own redis-server on loopback, on a free port, with its own
// directory and AOF on. It never touches a Redis someone else runs (e.g. on 6379).
//
// As a module: `startRedis(options)` resolves once PING answers.
// As a command: `npm run redis` runs one in the foreground
// (REDIS_PORT, REDIS_DATA_DIR) until SIGINT/SIGTERM.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import {
  envInt,
  freePort,
  restartable,
  runInForeground,
  startProcess,
  waitFor,
  type ProcessHandle,
  type ServiceHandle,
} from '../lib/process.ts';

const root = resolve(import.meta.dirname, '../..');

type Log = (message: string) => void;
export type AppendFsync = 'always' | 'everysec' | 'no';

export interface RedisHandle extends ServiceHandle {
  url: string;
}

export interface RedisOptions {
  port?: number | undefined;
  dataDir?: string | undefined;
  /** Default `always`: every write on disk before its reply. */
  appendfsync?: AppendFsync | undefined;
  /** More redis-server arguments, e.g. `['--replicaof', '127.0.0.1', '6380']`. */
  args?: string[];
  log?: Log;
}

/** Finds redis-server, installing Debian's package when it is missing and we may. */
export function ensureRedisServer({ log = console.error }: { log?: Log } = {}): string {
  const found = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  if (found.status === 0) return found.stdout.trim();
  if (process.getuid?.() !== 0) {
    throw new Error(
      'redis-server is not installed; install it (Debian: apt-get install redis-server) or set REDIS_URL',
    );
  }
  log('[redis] redis-server missing; installing Debian package redis-server');
  execFileSync(
    'sh',
    [
      '-c',
      'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null',
    ],
    {
      stdio: 'inherit',
    },
  );
  return 'redis-server';
}

/** Starts a redis-server; resolves once it answers PING. */
export async function startRedis({
  port,
  dataDir = join(root, '.data', 'redis'),
  // Every write on disk before its reply: what REDIS_DURABILITY=local promises on Redis < 7.2.
  appendfsync = 'always',
  args: extraArgs = [],
  log = console.error,
}: RedisOptions = {}): Promise<RedisHandle> {
  const binary = ensureRedisServer({ log });
  port ??= await freePort();
  mkdirSync(dataDir, { recursive: true });
  // Loopback only, AOF on, no RDB snapshots (`--save ''`), in the foreground.
  const args = [
    ...`--port ${port} --bind 127.0.0.1 --protected-mode yes --appendonly yes --daemonize no`.split(
      ' ',
    ),
    ...['--appendfsync', appendfsync, '--save', '', '--dir', dataDir],
    ...['--logfile', join(dataDir, 'redis.log'), ...extraArgs],
  ];
  const url = `redis://127.0.0.1:${port}`;
  const launch = async (): Promise<ProcessHandle> => {
    const proc = startProcess(binary, args, { name: 'redis' });
    await waitFor(`Redis on ${url}`, () => pingOnce(url), {
      timeoutMs: 20_000,
      intervalMs: 100,
      isAlive: proc.isAlive,
    });
    return proc;
  };
  return Object.assign(await restartable(launch, { port, dataDir, graceMs: 10_000 }), { url });
}

async function pingOnce(url: string): Promise<boolean> {
  const client = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.ping();
    return true;
  } finally {
    client.disconnect();
  }
}

if (process.argv[1] && resolve(process.argv[1]) === import.meta.filename) {
  runInForeground('redis', () =>
    startRedis({
      port: envInt('REDIS_PORT', 0) || undefined,
      dataDir: process.env.REDIS_DATA_DIR ? resolve(process.env.REDIS_DATA_DIR) : undefined,
    }),
  );
}
