// Starts the project's own redis-server on loopback, on a free port, with its own
// directory and AOF on. It never touches a Redis someone else runs (e.g. on 6379).
//
// As a module: `startRedis(options)` resolves once PING answers.
// As a command: `node scripts/redis/redis.mjs` runs one in the foreground
// (REDIS_PORT, REDIS_DATA_DIR, REDIS_APPENDFSYNC) until SIGINT/SIGTERM.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { freePort, startProcess, waitFor } from '../lib/process.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Finds redis-server, installing Debian's package when it is missing and we may. */
export function ensureRedisServer({ log = console.error } = {}) {
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

/**
 * @param {{ port?: number, dataDir?: string, appendfsync?: 'always'|'everysec'|'no', args?: string[], log?: (m: string) => void }} [options]
 *   args: more redis-server arguments, e.g. `['--replicaof', '127.0.0.1', '6380']`
 * @returns {Promise<{ url: string, port: number, dataDir: string, pid: number|undefined, stop(): Promise<unknown>, kill(): Promise<unknown>, restart(): Promise<void> }>}
 */
export async function startRedis({
  port,
  dataDir = join(root, '.data', 'redis'),
  // Every write on disk before its reply: what REDIS_DURABILITY=local promises on Redis < 7.2.
  appendfsync = 'always',
  args: extraArgs = [],
  log = console.error,
} = {}) {
  const binary = ensureRedisServer({ log });
  port ??= await freePort();
  mkdirSync(dataDir, { recursive: true });
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--protected-mode',
    'yes',
    '--dir',
    dataDir,
    '--appendonly',
    'yes',
    '--appendfsync',
    appendfsync,
    '--save',
    '',
    '--daemonize',
    'no',
    '--logfile',
    join(dataDir, 'redis.log'),
    ...extraArgs,
  ];
  const url = `redis://127.0.0.1:${port}`;
  const launch = async () => {
    const proc = startProcess(binary, args, { name: 'redis' });
    await waitFor(`Redis on ${url}`, () => pingOnce(url), {
      timeoutMs: 20_000,
      intervalMs: 100,
      isAlive: proc.isAlive,
    });
    return proc;
  };
  let proc = await launch();
  return {
    url,
    port,
    dataDir,
    get pid() {
      return proc.pid;
    },
    isAlive: () => proc.isAlive(),
    stop: () => proc.stop(10_000),
    kill: () => proc.kill(),
    async restart() {
      if (proc.isAlive()) await proc.stop(10_000);
      proc = await launch();
    },
  };
}

async function pingOnce(url) {
  const client = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } finally {
    client.disconnect();
  }
}

async function main() {
  const redis = await startRedis({
    port: process.env.REDIS_PORT ? Number(process.env.REDIS_PORT) : undefined,
    dataDir: process.env.REDIS_DATA_DIR ? resolve(process.env.REDIS_DATA_DIR) : undefined,
    appendfsync: process.env.REDIS_APPENDFSYNC,
  });
  console.log(`Redis ready on ${redis.url} (data in ${redis.dataDir}); Ctrl-C stops it`);
  const shutdown = async () => {
    await redis.stop();
    process.exit(0);
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error) => {
    console.error(`[redis] ${error.message}`);
    process.exit(1);
  });
}
