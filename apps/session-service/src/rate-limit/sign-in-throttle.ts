import { HttpException, HttpStatus, Inject, Injectable } from '@nestjs/common';
import { REDIS, type RedisClient } from '@app/redis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { throttleSettings, type ThrottleSettings } from '../sessions/sessions.settings';

/** Who is trying: the client's address and, for a password sign-in, the username. */
export interface Attempt {
  ip: string;
  username?: string | undefined;
}

type Route = 'login' | 'oidc' | 'refresh';

/**
 * Throttles sign-in and refresh attempts, shared by every session-service instance through
 * Redis (rate-limiter-flexible), after its "login endpoint protection" scheme:
 *
 * - requests per address per route and window, successes included (floods); for refresh, in
 *   this instance's memory (a refresh is then one Redis round trip; N instances behind a load
 *   balancer let an address N times as many);
 * - consecutive failed passwords per username **and** address: guessing from one address is
 *   blocked for a while, and the real user signing in from another is not (a success resets);
 * - failed passwords per address per day (one address guessing many usernames);
 * - failed passwords per username per hour from all addresses together, a much higher bound
 *   (guessing spread over many addresses). Only this one can stop the real user, and only
 *   under a distributed attack on that account: the trade-off every such scheme makes.
 */
@Injectable()
export class SignInThrottle {
  private readonly requestsByIp: RateLimiterRedis;
  private readonly refreshesByIp: RateLimiterMemory;
  private readonly consecutiveFails: RateLimiterRedis;
  private readonly failsByIp: RateLimiterRedis;
  private readonly failsByUsername: RateLimiterRedis;
  private readonly refusedLogoutTokens: RateLimiterRedis;

  constructor(
    @Inject(REDIS) redis: RedisClient,
    @Inject(throttleSettings.KEY) settings: ThrottleSettings,
  ) {
    const limiter = (name: string, points: number, seconds: number, blockSeconds = 0) =>
      new RateLimiterRedis({
        storeClient: redis,
        keyPrefix: `${settings.keyPrefix}rate:${name}`,
        points,
        duration: seconds,
        blockDuration: blockSeconds,
      });
    const { windowSeconds, perIp, blockSeconds } = settings;
    this.requestsByIp = limiter('requests', perIp, windowSeconds);
    this.refreshesByIp = new RateLimiterMemory({ points: perIp, duration: windowSeconds });
    this.consecutiveFails = limiter(
      'fails-user-ip',
      settings.consecutiveFails,
      blockSeconds,
      blockSeconds,
    );
    this.failsByIp = limiter('fails-ip', settings.failsPerIp, 24 * 3600, 24 * 3600);
    this.failsByUsername = limiter('fails-user', settings.failsPerUsername, 3600, 3600);
    this.refusedLogoutTokens = limiter('logout-refused', perIp, windowSeconds, windowSeconds);
  }

  /**
   * Back-channel logout: only refused logout tokens count (RATE_LIMIT_PER_IP per window and
   * address, then that address waits a window). Valid ones are never throttled: a provider
   * signing many users out at once (an admin's "log out all") sends one request per session
   * from one address, and a 429 there would leave sessions alive.
   */
  async admitLogoutToken(ip: string): Promise<void> {
    const result = await this.refusedLogoutTokens.get(ip);
    if (result && result.consumedPoints >= this.refusedLogoutTokens.points)
      tooMany('address')(result);
  }

  async refusedLogoutToken(ip: string): Promise<void> {
    await this.refusedLogoutTokens.penalty(ip);
  }

  /** Counts the attempt; 429 (with when to retry) when this client may not try now. */
  async admit(route: Route, attempt: Attempt): Promise<void> {
    const requests = route === 'refresh' ? this.refreshesByIp : this.requestsByIp;
    await requests.consume(`${route}:${attempt.ip}`).catch(tooMany('address'));
    if (attempt.username === undefined) return;
    const keys = failureKeys(attempt);
    const checks = [
      [this.consecutiveFails, keys.pair, 'username from this address'],
      [this.failsByIp, keys.ip, 'address'],
      [this.failsByUsername, keys.username, 'username'],
    ] as const;
    const results = await Promise.all(checks.map(([limiter, key]) => limiter.get(key)));
    checks.forEach(([limiter, , what], i) => {
      const result = results[i];
      if (result && result.consumedPoints >= limiter.points) tooMany(what)(result);
    });
  }

  /** A wrong password: counts against the username, the address, and the pair of them. */
  async failed(attempt: Attempt & { username: string }): Promise<void> {
    const keys = failureKeys(attempt);
    await Promise.all([
      this.consecutiveFails.penalty(keys.pair),
      this.failsByIp.penalty(keys.ip),
      this.failsByUsername.penalty(keys.username),
    ]);
  }

  /** The right password: the pair's consecutive failures start again from zero. */
  async succeeded(attempt: Attempt & { username: string }): Promise<void> {
    await this.consecutiveFails.delete(failureKeys(attempt).pair);
  }
}

function failureKeys({ ip, username = '' }: Attempt) {
  const name = username.toLowerCase();
  return { pair: `${name}\0${ip}`, ip, username: name };
}

/** Rethrows a refusal as 429 with Retry-After; anything else (Redis unreachable) as it is. */
function tooMany(what: string) {
  return (result: unknown): never => {
    if (!(result instanceof RateLimiterRes)) throw result;
    const retryAfter = Math.max(1, Math.ceil(result.msBeforeNext / 1000));
    throw new HttpException(
      {
        error: 'rate_limited',
        error_description: `too many attempts for this ${what}; retry in ${retryAfter} s`,
        retry_after: retryAfter,
      },
      HttpStatus.TOO_MANY_REQUESTS,
    );
  };
}
