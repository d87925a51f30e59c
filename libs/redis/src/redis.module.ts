import {
  type DynamicModule,
  Inject,
  Injectable,
  Logger,
  Module,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { AsyncOptions } from '@app/config/nest';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { optional, type RedisEnv } from '@app/config';
import { backoffDelay, type BackoffOptions } from '@app/contracts';
import type { ReadinessCheck } from '@app/observability';
import type { RedisClient } from './lua-commands';

/** Injection token of the app's ioredis client. */
export const REDIS = Symbol('REDIS');

export interface RedisModuleOptions {
  url: string;
  /** Seed nodes of a Redis Cluster: when given, the client is a `Cluster` and `url` is ignored. */
  clusterNodes?: readonly { host: string; port: number }[] | undefined;
  /** Extra ioredis options (per node on a Cluster); the defaults below favour failing fast over queueing. */
  options?: RedisOptions;
}

/** Waits between reconnection attempts while Redis is unreachable. */
const RECONNECT_BACKOFF: BackoffOptions = { initialMs: 100, maxMs: 1_000 };

/**
 * Client defaults for a request path: a command issued while Redis is unreachable fails at
 * once (no offline queue, no retry queue), so callers can answer 503 within seconds, while the
 * connection keeps reconnecting in the background and recovers by itself. A command sent
 * before the connection dropped is never sent again after the reconnect: Redis may already
 * have run it (only its reply was lost), and running a script twice is not always harmless.
 * It fails instead, like any command whose outcome is unknown.
 */
export const failFastRedisOptions: RedisOptions = {
  enableOfflineQueue: false,
  autoResendUnfulfilledCommands: false,
  maxRetriesPerRequest: 1,
  connectTimeout: 2_000,
  commandTimeout: 2_000,
  retryStrategy: (attempt) => backoffDelay(attempt, RECONNECT_BACKOFF),
};

/** Waits between attempts to reach a Cluster none of whose known nodes answers. */
const CLUSTER_RETRY_BACKOFF: BackoffOptions = { initialMs: 100, maxMs: 2_000 };

/**
 * The same spirit on a Redis Cluster: no offline queue (a command for a slot whose node is
 * unreachable fails at once), per-node connections as above. A command is still redirected
 * when a node refuses it without running it (`MOVED`, `ASK`, `TRYAGAIN`, `CLUSTERDOWN`), but
 * never re-sent after "Connection is closed" (`retryDelayOnFailover: 0`): the node may have
 * run it. The slot map is re-read every 2 s (and on every `MOVED`), so after a failover
 * commands reach the promoted replica within about that long.
 */
export const failFastClusterOptions: ClusterOptions = {
  enableOfflineQueue: false,
  retryDelayOnFailover: 0,
  retryDelayOnClusterDown: 100,
  retryDelayOnTryAgain: 100,
  maxRedirections: 8,
  slotsRefreshTimeout: 1_000,
  slotsRefreshInterval: 2_000,
  clusterRetryStrategy: (attempt) => backoffDelay(attempt, CLUSTER_RETRY_BACKOFF),
};

/** Options a Cluster sets on its node connections itself (it reconnects nodes, reads from primaries). */
const CLUSTER_MANAGED = [
  'enableOfflineQueue',
  'retryStrategy',
  'host',
  'port',
  'path',
  'sentinels',
  'readOnly',
];

/** The per-node part of `options` a Cluster takes: the rest it manages itself. */
function clusterNodeOptions(options: RedisOptions): ClusterOptions['redisOptions'] {
  return Object.fromEntries(
    Object.entries(options).filter(([name]) => !CLUSTER_MANAGED.includes(name)),
  );
}

/** The options every connection of `client` was made with (a Cluster's are per node). */
export function connectionOptions(client: RedisClient): RedisOptions {
  return client instanceof Cluster ? (client.options.redisOptions ?? {}) : client.options;
}

/**
 * Another client to the same Redis (or Cluster), with its own connections: for commands that
 * block their connection (blocking reads, WAIT). `options` override the per-node options.
 */
export function duplicateClient<C extends RedisClient>(client: C, options: RedisOptions): C {
  if (client instanceof Cluster)
    return client.duplicate([], { redisOptions: clusterNodeOptions(options) }) as C;
  return client.duplicate(options) as C;
}

const STARTUP_WAIT_MS = 3_000;

/**
 * Waits for the first connection, briefly: commands fail fast while not connected, so the
 * app should not begin with a burst of errors; but an app whose Redis is down still starts
 * (and answers 503 where it needs Redis) rather than hanging.
 */
export async function untilReady(client: RedisClient, timeoutMs: number): Promise<void> {
  if (client.status === 'ready') return;
  await new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      client.off('ready', done);
      resolve();
    };
    const timer = setTimeout(done, timeoutMs);
    client.once('ready', done);
  });
}

/** A client for `url`, or for the Cluster of `clusterNodes` when given. */
export function createRedisClient({ url, clusterNodes, options }: RedisModuleOptions): RedisClient {
  const perNode: RedisOptions = { ...failFastRedisOptions, ...options, lazyConnect: false };
  const client: RedisClient =
    clusterNodes && clusterNodes.length > 0
      ? new Cluster(
          clusterNodes.map(({ host, port }) => ({ host, port })),
          { ...failFastClusterOptions, redisOptions: clusterNodeOptions(perNode) },
        )
      : new Redis(url, perNode);
  const logger = new Logger('Redis');
  let reported = false;
  client.on('error', (error: Error) => {
    // ioredis emits one error per failed reconnect; say it once per outage.
    if (!reported) logger.error(`Redis unreachable: ${error.message}`);
    reported = true;
  });
  client.on('ready', () => {
    if (reported) logger.log('Redis reachable again');
    reported = false;
  });
  return client;
}

@Injectable()
export class RedisReadiness implements ReadinessCheck {
  readonly name = 'redis';
  constructor(@Inject(REDIS) private readonly redis: RedisClient) {}

  async check(): Promise<Record<string, unknown>> {
    if (this.redis instanceof Cluster) return this.checkCluster(this.redis);
    await this.redis.ping();
    return { connection: this.redis.status };
  }

  /** Every primary answers (each serves its own slots; one down means some users cannot be served). */
  private async checkCluster(cluster: Cluster): Promise<Record<string, unknown>> {
    // Not ready: commands fail at once (no offline queue) until the slot map is known.
    if (cluster.status !== 'ready') throw new Error(`Redis Cluster client is ${cluster.status}`);
    const primaries = cluster.nodes('master');
    if (primaries.length === 0)
      throw new Error(`no Redis Cluster primary known (${cluster.status})`);
    await Promise.all(primaries.map((node) => node.ping()));
    return { connection: cluster.status, primaries: primaries.length };
  }
}

@Injectable()
class RedisCloser implements OnApplicationShutdown {
  constructor(@Inject(REDIS) private readonly redis: RedisClient) {}

  async onApplicationShutdown(): Promise<void> {
    await this.redis.quit().catch(() => {
      this.redis.disconnect();
    });
  }
}

@Module({})
export class RedisModule {
  static forRootAsync(options: AsyncOptions<RedisModuleOptions>): DynamicModule {
    return {
      module: RedisModule,
      global: true,
      providers: [
        {
          provide: REDIS,
          useFactory: async (...args: never[]) => {
            const client = createRedisClient(await options.useFactory(...args));
            await untilReady(client, STARTUP_WAIT_MS);
            return client;
          },
          inject: options.inject ?? [],
        },
        RedisReadiness,
        RedisCloser,
      ],
      exports: [REDIS, RedisReadiness],
    };
  }

  /** The client for REDIS_CLUSTER_NODES, else REDIS_URL, of the app's validated environment (see `redisEnv`). */
  static fromEnv(): DynamicModule {
    return RedisModule.forRootAsync({
      inject: [ConfigService],
      useFactory: (config: ConfigService<RedisEnv, true>) => ({
        url: config.get('REDIS_URL', { infer: true }),
        clusterNodes: optional(config.get('REDIS_CLUSTER_NODES', { infer: true })),
      }),
    });
  }
}
