import type { RevocationGuard } from '@app/revocation-guard';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { GatewayEnv } from './config';
import { invalidSession, Refusal, unavailable } from './refusal';
import {
  accessClaims,
  type OnBehalfOf,
  type SessionClient,
  type TokenPair,
} from './session-client';
import { TokenStore, type CookieSession } from './token-store';

export const COOKIE = '__Host-session';

export type CookieSessionsEnv = Pick<
  GatewayEnv,
  'GATEWAY_ALLOWED_ORIGINS' | 'GATEWAY_REMEMBER_TTL_SECONDS' | 'GATEWAY_REFRESH_AHEAD_SECONDS'
>;

/**
 * The browser side of the token handler: the `__Host-session` cookie (a handle to tokens kept
 * in Redis), the CSRF rules, the check of a cookie session against the revocation view, and
 * the single-flight refresh of its access token.
 */
export class CookieSessions {
  private readonly allowedOrigins: Set<string>;
  /** Refreshes in flight, per handle: concurrent requests of one session share one. */
  private readonly refreshing = new Map<string, Promise<CookieSession>>();

  constructor(
    private readonly env: CookieSessionsEnv,
    private readonly store: TokenStore,
    private readonly sessions: SessionClient,
    private readonly guard: RevocationGuard,
  ) {
    this.allowedOrigins = new Set(
      env.GATEWAY_ALLOWED_ORIGINS.map((origin) => new URL(origin).origin),
    );
  }

  setCookie(reply: FastifyReply, handle: string, remember: boolean): void {
    void reply.setCookie(COOKIE, handle, {
      httpOnly: true,
      secure: true,
      sameSite: 'strict',
      path: '/',
      ...(remember && { maxAge: this.env.GATEWAY_REMEMBER_TTL_SECONDS }),
    });
  }

  clearCookie(reply: FastifyReply): void {
    void reply.setCookie(COOKIE, '', {
      httpOnly: true,
      secure: true,
      sameSite: 'strict',
      path: '/',
      maxAge: 0,
      expires: new Date(0),
    });
  }

  /** `x-csrf: 1`, and an `Origin` (when sent) among the allowed ones. */
  checkCsrf(request: FastifyRequest): void {
    if (request.headers['x-csrf'] !== '1')
      throw new Refusal(403, { error: 'csrf', error_description: 'header x-csrf: 1 required' });
    this.checkOrigin(request);
  }

  /** An `Origin` (when sent) among the allowed ones. */
  checkOrigin(request: FastifyRequest): void {
    const origin = request.headers.origin;
    if (origin !== undefined && !this.allowedOrigins.has(origin))
      throw new Refusal(403, { error: 'origin', error_description: 'origin not allowed' });
  }

  handleOf(request: FastifyRequest): string | undefined {
    const value = request.cookies[COOKIE];
    return TokenStore.isHandle(value) ? value : undefined;
  }

  /**
   * The live cookie session of a request, or a refusal: unknown handle, or a session the
   * revocation view says is ended (no call to anything but the gateway's own Redis entry).
   */
  async live(request: FastifyRequest): Promise<{ handle: string; session: CookieSession }> {
    const handle = this.handleOf(request);
    if (handle === undefined) throw invalidSession('no session');
    const session = await this.store.get(handle);
    if (session === undefined) throw invalidSession('no session');
    if (!this.guard.ready) throw unavailable('revocation view not loaded yet, retry shortly');
    const revoked = this.guard.store.check({
      sub: session.sub,
      sid: session.session_id,
      iat: session.iat,
    });
    if (revoked !== undefined) {
      await this.store.delete(handle);
      throw invalidSession(
        revoked === 'session_revoked' ? 'session revoked' : 'all sessions of the user were revoked',
      );
    }
    return { handle, session };
  }

  /** The session with a fresh access token: refreshed first when it expires soon. */
  current(
    handle: string,
    session: CookieSession,
    client: OnBehalfOf,
  ): Promise<CookieSession> | CookieSession {
    return session.exp - this.env.GATEWAY_REFRESH_AHEAD_SECONDS <= Date.now() / 1000
      ? this.refreshed(handle, session, client)
      : session;
  }

  /** One refresh per session at a time: concurrent requests share it. */
  refreshed(handle: string, session: CookieSession, client: OnBehalfOf): Promise<CookieSession> {
    let flight = this.refreshing.get(handle);
    if (flight === undefined) {
      flight = this.refresh(handle, session, client).finally(() => this.refreshing.delete(handle));
      this.refreshing.set(handle, flight);
    }
    return flight;
  }

  private async refresh(
    handle: string,
    session: CookieSession,
    client: OnBehalfOf,
  ): Promise<CookieSession> {
    const answer = await this.sessions.refresh(session.refresh_token, client);
    if (answer.status === 401 || answer.status === 400) {
      await this.store.delete(handle);
      throw invalidSession('session ended');
    }
    if (answer.status !== 200 || answer.body === undefined)
      throw unavailable('could not refresh the session, retry shortly');
    const next = withPair(session, answer.body);
    await this.store.update(handle, next);
    return next;
  }
}

/** The session with a new token pair and the claims of its access token. */
export function withPair(session: CookieSession, pair: TokenPair): CookieSession {
  const claims = accessClaims(pair.access_token);
  return {
    ...session,
    access_token: pair.access_token,
    refresh_token: pair.refresh_token,
    sub: claims.sub,
    roles: claims.roles,
    iat: claims.iat,
    exp: claims.exp,
  };
}
