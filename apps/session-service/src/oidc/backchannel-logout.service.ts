import { Inject, Injectable } from '@nestjs/common';
import { REDIS, type RedisClient } from '@app/redis';
import { createHash } from 'node:crypto';
import {
  InvalidLogoutTokenError,
  LogoutTokenVerifier,
  type LogoutRequest,
} from '../identity/logout-token-verifier';
import { oidcUserId } from '../identity/user-directory';
import { SessionService } from '../sessions/session.service';
import { throttleSettings, type ThrottleSettings } from '../sessions/sessions.settings';

/**
 * Logout tokens already acted on (OpenID Connect Back-Channel Logout 1.0 §2.6, step 9), by the
 * hash of issuer and `jti`, in Redis (every instance shares it) until the token expires.
 */
@Injectable()
export class LogoutTokenReplayCache {
  private readonly prefix: string;

  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(throttleSettings.KEY) settings: ThrottleSettings,
  ) {
    this.prefix = `${settings.keyPrefix}logout-jti:`;
  }

  private key(token: LogoutRequest): string {
    const id = createHash('sha256').update(token.issuer).update('\0').update(token.jti);
    return `${this.prefix}${id.digest('hex')}`;
  }

  async seen(token: LogoutRequest): Promise<boolean> {
    return (await this.redis.exists(this.key(token))) === 1;
  }

  /** Remembers the token until it could no longer be accepted anyway. */
  async remember(token: LogoutRequest, now: number): Promise<void> {
    await this.redis.set(
      this.key(token),
      '1',
      'PX',
      Math.max(1_000, token.replayUntil - now),
      'NX',
    );
  }
}

/**
 * OpenID Connect Back-Channel Logout 1.0 §2.6-2.7: verifies a logout token, refuses one seen
 * before, and ends the sessions it names.
 *
 * The `jti` is checked before anything ends and remembered after the sessions are ended: a
 * failure in between (503) leaves the token acceptable, so the provider's retry works; two
 * copies racing may both act, which ends nothing twice (ending is idempotent).
 */
@Injectable()
export class BackchannelLogout {
  constructor(
    private readonly verifier: LogoutTokenVerifier,
    private readonly replays: LogoutTokenReplayCache,
    private readonly sessions: SessionService,
  ) {}

  /** How many sessions ended; throws InvalidLogoutTokenError for a token to refuse. */
  async logout(logoutToken: string): Promise<number> {
    const token = await this.verifier.verify(logoutToken);
    if (await this.replays.seen(token)) {
      throw new InvalidLogoutTokenError('replayed', 'logout token was received before');
    }
    const ended = await this.sessions.endProviderSessions({
      issuer: token.issuer,
      sid: token.sid,
      sub: token.sub,
      userId: token.sub === undefined ? undefined : oidcUserId(token.issuer, token.sub),
    });
    await this.replays.remember(token, Date.now());
    return ended;
  }
}
