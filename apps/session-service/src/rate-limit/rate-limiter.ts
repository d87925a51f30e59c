import { HttpException, HttpStatus, Inject, Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { REDIS } from '@app/redis';
import type { Redis } from 'ioredis';
import type { SessionServiceEnv } from '../config';

/**
 * Fixed-window counters in Redis, shared by every session-service instance: sign-in and
 * refresh attempts per client IP and per username. Over the limit: 429 with Retry-After.
 */
@Injectable()
export class RateLimiter {
  private readonly prefix: string;
  private readonly windowMs: number;
  private readonly limits: Record<'ip' | 'username', number>;

  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    config: ConfigService<SessionServiceEnv, true>,
  ) {
    this.prefix = `${config.get('REDIS_KEY_PREFIX', { infer: true })}rate:`;
    this.windowMs = config.get('RATE_LIMIT_WINDOW_SECONDS', { infer: true }) * 1000;
    this.limits = {
      ip: config.get('RATE_LIMIT_PER_IP', { infer: true }),
      username: config.get('RATE_LIMIT_PER_USERNAME', { infer: true }),
    };
  }

  /** Counts one attempt for each subject given; throws 429 when any is over its limit. */
  async hit(
    route: string,
    subjects: { ip?: string | undefined; username?: string | undefined },
    now: number,
  ): Promise<void> {
    const window = Math.floor(now / this.windowMs);
    const retryAfter = Math.ceil(((window + 1) * this.windowMs - now) / 1000);
    const checks = (['ip', 'username'] as const).filter((kind) => subjects[kind] !== undefined);
    const pipeline = this.redis.pipeline();
    for (const kind of checks) {
      const key = `${this.prefix}${route}:${kind}:${subjects[kind] ?? ''}:${window}`;
      pipeline.incr(key);
      pipeline.pexpire(key, this.windowMs);
    }
    const results = (await pipeline.exec()) ?? [];
    checks.forEach((kind, i) => {
      const [error, count] = results[i * 2] ?? [];
      if (error) throw error;
      if (Number(count) > this.limits[kind]) {
        throw new HttpException(
          {
            error: 'rate_limited',
            error_description: `too many attempts for this ${kind}`,
            retry_after: retryAfter,
          },
          HttpStatus.TOO_MANY_REQUESTS,
          { cause: retryAfter },
        );
      }
    });
  }
}
