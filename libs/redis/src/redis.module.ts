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
import { Redis, type RedisOptions } from 'ioredis';
import type { RedisEnv } from '@app/config';
import { backoffDelay, type BackoffOptions } from '@app/contracts';
import type { ReadinessCheck } from '@app/observability';

/** Injection token of the app's ioredis client. */
export const REDIS = Symbol('REDIS');

export interface RedisModuleOptions {
  url: string;
  /** Extra ioredis options; the defaults below favour failing fast over queueing. */
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

const STARTUP_WAIT_MS = 3_000;

/**
 * Waits for the first connection, briefly: commands fail fast while not connected, so the
 * app should not begin with a burst of errors; but an app whose Redis is down still starts
 * (and answers 503 where it needs Redis) rather than hanging.
 */
async function untilReady(client: Redis, timeoutMs: number): Promise<void> {
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

export function createRedisClient({ url, options }: RedisModuleOptions): Redis {
  const client = new Redis(url, { ...failFastRedisOptions, ...options, lazyConnect: false });
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
  constructor(@Inject(REDIS) private readonly redis: Redis) {}

  async check(): Promise<Record<string, unknown>> {
    await this.redis.ping();
    return { connection: this.redis.status };
  }
}

@Injectable()
class RedisCloser implements OnApplicationShutdown {
  constructor(@Inject(REDIS) private readonly redis: Redis) {}

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

  /** The client for REDIS_URL of the app's validated environment (see `redisEnv`). */
  static fromEnv(): DynamicModule {
    return RedisModule.forRootAsync({
      inject: [ConfigService],
      useFactory: (config: ConfigService<RedisEnv, true>) => ({
        url: config.get('REDIS_URL', { infer: true }),
      }),
    });
  }
}
