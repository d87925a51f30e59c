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

/** Settings of every node of the local Redis Cluster; docker-compose.cluster.yml mirrors them. */
export const redisClusterSettings: Record<string, string> = {
  'cluster-enabled': 'yes',
  'cluster-config-file': 'nodes.conf',
  // A node that cannot be reached for 2 s is failed over (the default is 15 s).
  'cluster-node-timeout': '2000',
};

/** One node of a Redis Cluster: primary or replica as the cluster decides, after failovers too. */
export type RedisClusterNode = RedisHandle;

export interface RedisClusterHandle {
  /** `127.0.0.1:<port>,…`: every node, as REDIS_CLUSTER_NODES takes them. */
  nodes: string;
  members: RedisClusterNode[];
  dataDir: string;
  stop(): Promise<void>;
}

/**
 * Starts a Redis Cluster on loopback: `primaries` (default 3) primaries each with `replicas`
 * (default 1) replicas, every node a redis-server of its own (`--cluster-enabled yes`, AOF as
 * `startRedis`) in `<dataDir>/node-<i>`, joined by `redis-cli --cluster create` from the same
 * Debian package. Resolves once every node reports `cluster_state:ok` with all 16,384 slots.
 */
export async function startRedisCluster({
  primaries = 3,
  replicas = 1,
  dataDir = join(root, '.data', 'redis-cluster'),
  appendfsync = 'always',
  log = console.error,
}: {
  primaries?: number;
  replicas?: number;
  dataDir?: string;
  appendfsync?: AppendFsync;
  log?: Log;
} = {}): Promise<RedisClusterHandle> {
  const count = primaries * (1 + replicas);
  const members: RedisClusterNode[] = [];
  const stop = async () => {
    await Promise.allSettled(members.map((member) => member.stop()));
  };
  try {
    for (const member of await Promise.all(
      Array.from({ length: count }, async (_, i) =>
        startRedis({
          dataDir: join(dataDir, `node-${i + 1}`),
          appendfsync,
          args: [
            ...Object.entries(redisClusterSettings).flatMap(([name, value]) => [
              `--${name}`,
              value,
            ]),
            // The cluster bus on a free port of its own. By default it is the node's port +
            // 10,000: never checked free, and past 65,535 for a port above 55,535, which a free
            // port from the ephemeral range (32,768-60,999) is one time in five: that node
            // refuses to start ("Redis port number too high").
            '--cluster-port',
            String(await freePort()),
          ],
          log,
        }),
      ),
    ))
      members.push(member);
    const nodes = members.map((member) => member.url.replace('redis://', ''));
    const formed = await clusterState(members[0]?.url ?? '', replicas);
    if (!formed.ok) {
      execFileSync(
        redisCli(),
        ['--cluster', 'create', ...nodes, '--cluster-replicas', String(replicas), '--cluster-yes'],
        { stdio: ['ignore', 'ignore', 'inherit'] },
      );
    }
    await waitFor(
      `Redis Cluster on ${nodes.join(',')}`,
      async () => {
        const states = await Promise.all(
          members.map((member) => clusterState(member.url, replicas)),
        );
        return states.every((state) => state.ok);
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    return { nodes: nodes.join(','), members, dataDir, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** redis-cli, from the Debian package that brings redis-server. */
function redisCli(): string {
  const found = spawnSync('sh', ['-c', 'command -v redis-cli'], { encoding: 'utf8' });
  if (found.status !== 0) throw new Error('redis-cli is not installed (Debian: redis-tools)');
  return found.stdout.trim();
}

/**
 * Whether a node sees the cluster as healthy (`cluster_state:ok`, every slot assigned) and is
 * in its place: a primary with `replicas` replicas attached, or a replica whose link to its
 * primary is up (its first sync done).
 */
async function clusterState(url: string, replicas: number): Promise<{ ok: boolean }> {
  const client = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const info = String(await client.call('CLUSTER', 'INFO'));
    const replication = await client.info('replication');
    const field = (name: string) =>
      new RegExp(`^${name}:(.*)$`, 'm').exec(replication)?.[1]?.trim();
    const placed =
      field('role') === 'master'
        ? Number(field('connected_slaves')) >= replicas
        : field('master_link_status') === 'up';
    return {
      ok:
        info.includes('cluster_state:ok') &&
        info.includes('cluster_slots_assigned:16384') &&
        placed,
    };
  } catch {
    return { ok: false };
  } finally {
    client.disconnect();
  }
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
