import {
  Inject,
  Injectable,
  Logger,
  ServiceUnavailableException,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import {
  connectionOptions,
  duplicateClient,
  REDIS,
  untilReady,
  type LuaCommand,
  type RedisClient,
} from '@app/redis';
import { Cluster, type ChainableCommander } from 'ioredis';
import { sessionsSettings, type SessionsSettings } from '../sessions.settings';

/** Connections that carry the commands which wait for durability (each wait blocks its connection). */
const POOL_SIZE = 4;

interface ServerTraits {
  /** Redis 7.2+: WAITAOF waits for the AOF to be on disk. */
  waitAof: boolean;
}

/**
 * How durable a session end is before the service answers (REDIS_DURABILITY):
 *
 * - `local` (default): on Redis 7.2+ the answer waits for the primary's AOF fsync (WAITAOF);
 *   on older servers the write is durable as the server's `appendfsync` makes it (`always`:
 *   on disk; `everysec`: up to a second can be lost on power loss, nothing on a crash of Redis
 *   alone), which the service states in its log at start.
 * - `replicas`: besides, REDIS_DURABILITY_REPLICAS replicas have it (WAIT; WAITAOF on 7.2+,
 *   their AOF on disk) within REDIS_DURABILITY_TIMEOUT_MS, so a failover to a replica loses
 *   no acknowledged session end. Otherwise 503: the end did happen on the primary and may
 *   survive; retrying is safe (ending a session twice is harmless).
 *
 * Only commands that appended revocation events wait. The waits block their connection, so
 * those commands run on a small pool of connections of their own, never delaying the rest.
 *
 * On a Redis Cluster, WAIT and WAITAOF count the writes of the connection they run on, to one
 * node: they go in one pipeline with the command, which the client sends to the node serving
 * the command's slot (its primary), on the same connection. So there they run after every
 * such command, also one that appended nothing (they return at once then: no new write).
 */
@Injectable()
export class Durability implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Durability');
  private readonly mode: 'local' | 'replicas';
  private readonly replicas: number;
  private readonly timeoutMs: number;
  private readonly pool: RedisClient[] = [];
  private next = 0;
  private traits: Promise<ServerTraits> | undefined;

  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(sessionsSettings.KEY) { durability }: SessionsSettings,
  ) {
    this.mode = durability.mode;
    this.replicas = durability.replicas;
    this.timeoutMs = durability.timeoutMs;
  }

  async onApplicationBootstrap(): Promise<void> {
    // A Cluster client takes a moment to learn the slot map: open the pool before requests come.
    if (this.redis instanceof Cluster) {
      this.openPool();
      const { connectTimeout = 2_000 } = connectionOptions(this.redis);
      await Promise.all(this.pool.map((connection) => untilReady(connection, connectTimeout)));
    }
    await this.serverTraits().catch((error: unknown) => {
      this.logger.warn(`cannot read the Redis server's settings yet: ${(error as Error).message}`);
    });
  }

  onApplicationShutdown(): void {
    for (const connection of this.pool) connection.disconnect();
  }

  /** Runs a command that may append revocation events; answers once they are as durable as configured. */
  async run<A, R extends { events: number }>(
    command: LuaCommand<A, R>,
    keys: readonly string[],
    arg: A,
  ): Promise<R> {
    const { waitAof } = await this.serverTraits();
    if (this.mode === 'local' && !waitAof) return command.run(this.redis, keys, arg);
    const connection = await this.connection();
    if (connection instanceof Cluster) {
      const { reply, followers } = await command.runFollowedBy(
        connection,
        keys,
        arg,
        (pipeline) => {
          this.waitIn(pipeline, waitAof);
        },
      );
      if (reply.events > 0) this.checkReached(followers[0], waitAof);
      return reply;
    }
    const reply = await command.run(connection, keys, arg);
    if (reply.events > 0) {
      const pipeline = connection.pipeline();
      this.waitIn(pipeline, waitAof);
      const [[error, reached] = [null, undefined]] = (await pipeline.exec()) ?? [];
      if (error) throw error;
      this.checkReached(reached, waitAof);
    }
    return reply;
  }

  /** Adds the wait for durability (WAITAOF on 7.2+, else WAIT) to `pipeline`. */
  private waitIn(pipeline: ChainableCommander, waitAof: boolean): void {
    const replicas = this.mode === 'replicas' ? this.replicas : 0;
    if (waitAof) pipeline.call('WAITAOF', 1, replicas, this.timeoutMs);
    else pipeline.wait(replicas, this.timeoutMs);
  }

  /** Throws 503 unless the wait's reply says the write is as durable as configured. */
  private checkReached(waitReply: unknown, waitAof: boolean): void {
    const replicas = this.mode === 'replicas' ? this.replicas : 0;
    let reached: boolean;
    if (waitAof) {
      const [local, remote] = waitReply as [number, number];
      reached = local >= 1 && remote >= replicas;
    } else {
      reached = Number(waitReply) >= replicas;
    }
    if (!reached) {
      throw new ServiceUnavailableException({
        error: 'temporarily_unavailable',
        error_description:
          'the change is not yet durable on enough Redis replicas; it may still apply, retry',
        retry_after: 1,
      });
    }
  }

  /** The next connection of the pool (opened on first use), once it is connected. */
  private async connection(): Promise<RedisClient> {
    this.openPool();
    this.next = (this.next + 1) % this.pool.length;
    const connection = this.pool[this.next] as RedisClient;
    // Like the main connection, no queue: wait for it briefly, then let the command fail (503).
    await untilReady(connection, connectionOptions(this.redis).connectTimeout ?? 2_000);
    return connection;
  }

  private openPool(): void {
    if (this.pool.length > 0) return;
    const { commandTimeout = 2_000 } = connectionOptions(this.redis);
    for (let i = 0; i < POOL_SIZE; i += 1) {
      // A wait may take up to the durability timeout, on top of the command itself.
      const connection = duplicateClient(this.redis, {
        commandTimeout: commandTimeout + this.timeoutMs,
      });
      connection.on('error', () => undefined); // reported by the main connection
      this.pool.push(connection);
    }
  }

  /** The server's version and persistence settings, read once, with what they guarantee logged. */
  private serverTraits(): Promise<ServerTraits> {
    this.traits ??= this.readServerTraits().catch((error: unknown) => {
      this.traits = undefined; // try again next time
      throw error;
    });
    return this.traits;
  }

  private async readServerTraits(): Promise<ServerTraits> {
    const info = await this.redis.info('server');
    const version = /redis_version:(\d+)\.(\d+)/.exec(info);
    const [major, minor] = [Number(version?.[1] ?? 0), Number(version?.[2] ?? 0)];
    const waitAof = major > 7 || (major === 7 && minor >= 2);
    const persistence = await this.redis.info('persistence');
    const aof = /aof_enabled:1/.test(persistence);
    const fsync = await this.appendfsync();
    const where =
      this.mode === 'replicas'
        ? `and on ${this.replicas} replica(s) (${waitAof ? 'WAITAOF' : 'WAIT'}, ${this.timeoutMs} ms, else 503)`
        : '';
    if (!aof) {
      this.logger.warn(
        `REDIS_DURABILITY=${this.mode}: Redis keeps no AOF; a session end acknowledged before a restart of Redis is lost ${where}`,
      );
    } else if (waitAof) {
      this.logger.log(
        `REDIS_DURABILITY=${this.mode}: each session end is on disk (WAITAOF) ${where}`,
      );
    } else if (fsync === 'always') {
      this.logger.log(
        `REDIS_DURABILITY=${this.mode}: each session end is on disk (appendfsync always) ${where}`,
      );
    } else {
      this.logger.warn(
        `REDIS_DURABILITY=${this.mode}: Redis ${major}.${minor} with appendfsync ${fsync ?? 'unknown'}: a session end acknowledged up to a second before a power loss can be lost (use appendfsync always, or Redis 7.2+) ${where}`,
      );
    }
    return { waitAof };
  }

  /** `appendfsync`, unless CONFIG is disabled (managed Redis services often rename it). */
  private async appendfsync(): Promise<string | undefined> {
    try {
      const [, value] = (await this.redis.config('GET', 'appendfsync')) as [string, string];
      return value;
    } catch {
      return undefined;
    }
  }
}
