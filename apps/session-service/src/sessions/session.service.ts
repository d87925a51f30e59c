import {
  ConflictException,
  Inject,
  Injectable,
  NotFoundException,
  UnauthorizedException,
} from '@nestjs/common';
import { UserDirectory } from '../identity/user-directory';
import { CLOCK, type Clock } from '../tokens/clock';
import { TokenService } from '../tokens/token.service';
import { SessionMetrics } from './session.metrics';
import { SESSION_REPOSITORY, type SessionRepository } from './session.repository';
import type {
  Initiator,
  OpaqueTokenTarget,
  Plan,
  ProviderLogout,
  SessionView,
  SignIn,
  TokenSubject,
} from './session.types';

export interface TokenResponse {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  refresh_token: string;
  session_id: string;
}

/** The `reason_admin` of a session ended by the provider's back-channel logout. */
export const IDP_LOGOUT_REASON = 'signed out at the identity provider';

/** Sign-in, refresh and every way a session ends; the HTTP layer only maps to and from this. */
@Injectable()
export class SessionService {
  constructor(
    @Inject(SESSION_REPOSITORY) private readonly store: SessionRepository,
    private readonly tokens: TokenService,
    private readonly metrics: SessionMetrics,
    private readonly users: UserDirectory,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  /** Opens a session under the user's device limit; 409 `device_limit_reached` when the plan says reject. */
  async signIn(signIn: SignIn, method: 'password' | 'oidc'): Promise<TokenResponse> {
    const result = await this.store.create(signIn, this.clock.now());
    if (result.kind === 'replayed') {
      throw new UnauthorizedException({
        error: 'invalid_id_token',
        error_description: 'this ID token was used before',
      });
    }
    if (result.kind === 'provider_ended') {
      throw new UnauthorizedException({
        error: 'invalid_id_token',
        error_description: 'the provider session of this ID token has ended',
      });
    }
    if (result.kind === 'rejected') {
      this.metrics.deviceLimitRejections.inc();
      throw new ConflictException({
        error: 'device_limit_reached',
        error_description: 'this plan allows no more devices; end one of these sessions first',
        sessions: result.sessions,
      });
    }
    this.metrics.signIns.inc({ method });
    this.metrics.deviceLimitEvictions.inc(result.evicted);
    return this.respond(result, result.refreshToken);
  }

  /**
   * Rotates a refresh token; a reused one ends its session (and says so only as invalid_grant).
   * The user is looked up again: a removed or disabled user's session ends (with its event),
   * and a password user's token carries their roles of now, not of the sign-in.
   */
  async refresh(refreshToken: string): Promise<TokenResponse> {
    const now = this.clock.now();
    const result = await this.store.rotate(refreshToken, now);
    if (result.kind === 'rotated') {
      const standing = this.users.standing(result.userId);
      if (standing.kind === 'active') {
        this.metrics.refreshes.inc();
        return this.respond(
          { ...result, roles: standing.roles ?? result.roles },
          result.refreshToken,
        );
      }
      const reason = standing.kind === 'disabled' ? 'user_disabled' : 'user_removed';
      await this.store.end(result.sessionId, { initiator: 'system', reason }, now);
      this.metrics.revocations.inc({ reason });
    }
    if (result.kind === 'reused') this.metrics.reuseDetections.inc();
    throw new UnauthorizedException({
      error: 'invalid_grant',
      error_description: 'refresh token is not valid',
    });
  }

  async logout(sessionId: string): Promise<void> {
    await this.end(sessionId, 'user', 'user_logout');
  }

  /** Ends every session of the user; an admin may give a reason for the event's `reason_admin`. */
  async logoutAll(
    userId: string,
    initiator: Initiator = 'user',
    adminReason?: string,
  ): Promise<number> {
    const kind = initiator === 'admin' ? 'admin' : 'logout_all';
    const ended = await this.store.endAll(
      userId,
      { initiator, reason: adminReason ?? kind },
      this.clock.now(),
    );
    this.metrics.revocations.inc({ reason: kind });
    return ended;
  }

  /**
   * OpenID Connect Back-Channel Logout: ends the sessions that came from the provider session
   * (or, with `sub` only, every session of that user from that issuer), each with a revocation
   * event from the system; how many ended (0 when none was live: already ended is not an error).
   */
  async endProviderSessions(logout: ProviderLogout): Promise<number> {
    const ended = await this.store.endProviderSessions(
      logout,
      { initiator: 'system', reason: IDP_LOGOUT_REASON },
      this.clock.now(),
    );
    this.metrics.revocations.inc({ reason: 'idp_logout' }, ended);
    return ended;
  }

  /** Ends `sessionId` if it belongs to `owner`; 404 otherwise (whoever's it is). */
  async endOwn(owner: string, sessionId: string): Promise<void> {
    const ended = await this.store.end(
      sessionId,
      { initiator: 'user', reason: 'user_logout', owner },
      this.clock.now(),
    );
    if (!ended)
      throw new NotFoundException({ error: 'not_found', error_description: 'no such session' });
    this.metrics.revocations.inc({ reason: 'user_logout' });
  }

  /** Ends any session; the admin's reason, when given, is the event's `reason_admin`. */
  async endByAdmin(sessionId: string, reason?: string): Promise<void> {
    if (!(await this.end(sessionId, 'admin', 'admin', reason))) {
      throw new NotFoundException({ error: 'not_found', error_description: 'no such session' });
    }
  }

  list(userId: string): Promise<SessionView[]> {
    return this.store.list(userId, this.clock.now());
  }

  setPlan(userId: string, plan: Plan): Promise<void> {
    return this.store.setPlan(userId, plan);
  }

  /** The owner of a live session (for bearer checks and introspection). */
  ownerOf(sessionId: string): Promise<string | undefined> {
    return this.store.ownerOf(sessionId, this.clock.now());
  }

  /**
   * The access JWT an opaque token stands for, while the token is unexpired and its session
   * live (phantom tokens: introspection, and this service's own bearer checks).
   */
  resolveOpaqueToken(token: string): Promise<OpaqueTokenTarget | undefined> {
    return this.store.resolveOpaqueToken(token, this.clock.now());
  }

  /** Ends the session of a refresh token (RFC 7009); unknown tokens are not an error. */
  async revokeRefreshToken(refreshToken: string): Promise<void> {
    const sessionId = await this.store.sessionOfRefreshToken(refreshToken);
    if (sessionId) await this.end(sessionId, 'user', 'token_revoked');
  }

  async sweepExpired(): Promise<number> {
    return this.store.sweep(this.clock.now());
  }

  /** Ends a session; the event says `text` (default: `reason`, the metric's label). */
  private async end(
    sessionId: string,
    initiator: Initiator,
    reason: string,
    text = reason,
  ): Promise<boolean> {
    const user = await this.store.end(sessionId, { initiator, reason: text }, this.clock.now());
    if (user) this.metrics.revocations.inc({ reason });
    return user !== undefined;
  }

  private async respond(subject: TokenSubject, refreshToken: string): Promise<TokenResponse> {
    const { token, expiresIn, expiresAt } = await this.tokens.issueAccessToken({
      sub: subject.userId,
      sid: subject.sessionId,
      roles: subject.roles,
      notAfter: Math.floor(subject.absoluteAt / 1000),
      issuedAt: subject.issuedAt,
    });
    const accessToken =
      subject.tokenFormat === 'opaque'
        ? await this.opaqueToken(subject.sessionId, token, expiresAt)
        : token;
    return {
      access_token: accessToken,
      token_type: 'Bearer',
      expires_in: expiresIn,
      refresh_token: refreshToken,
      session_id: subject.sessionId,
    };
  }

  /**
   * An opaque token standing for `jwt` (phantom token), stored until the JWT expires. A session
   * that ended between its Redis step and this one gets none: 401 `invalid_grant`, as a refresh
   * of an ended session does.
   */
  private async opaqueToken(sessionId: string, jwt: string, expiresAt: number): Promise<string> {
    const token = await this.store.storeOpaqueToken(
      sessionId,
      { jwt, expiresAt: expiresAt * 1000 },
      this.clock.now(),
    );
    if (token === undefined) {
      throw new UnauthorizedException({
        error: 'invalid_grant',
        error_description: 'the session ended while its token was issued',
      });
    }
    return token;
  }
}
