import { createHash, randomBytes } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { REDIS, type RedisClient } from '@app/redis';
import { Durability } from './durability';
import { opaqueToken, refreshToken, SessionKeys } from './session-keys';
import {
  createSession,
  endAllSessions,
  endExpired,
  endProviderSessions,
  endSession,
  expiredUsers,
  providerSession,
  rotateRefresh,
  storeAccessToken,
  type EventContext,
} from './session-commands';
import type { SessionRepository } from '../session.repository';
import type {
  CreateResult,
  Initiator,
  OpaqueTokenTarget,
  Plan,
  ProviderLogout,
  RotateResult,
  SessionView,
  SignIn,
} from '../session.types';
import { sessionsSettings, type SessionsSettings } from '../sessions.settings';

/** Refresh and opaque access tokens are stored only as SHA-256: a leaked Redis does not leak usable tokens. */
export const hashToken = (token: string): string =>
  createHash('sha256').update(token).digest('hex');

const random = (bytes: number): string => randomBytes(bytes).toString('base64url');

/** A provider session's name in keys: the hash of its issuer and `sid`. */
export const providerSessionHash = (issuer: string, sid: string): string =>
  createHash('sha256').update(issuer).update('\0').update(sid).digest('hex');

/**
 * Sessions, refresh-token families and device limits in Redis. Every change that ends a
 * session appends its revocation event to the outbox in the same Lua command, all on the keys
 * of one user (one hash slot).
 */
@Injectable()
export class RedisSessionRepository implements SessionRepository {
  private readonly keys: SessionKeys;

  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    private readonly durability: Durability,
    @Inject(sessionsSettings.KEY) private readonly settings: SessionsSettings,
  ) {
    this.keys = new SessionKeys({ prefix: settings.keyPrefix, shards: settings.shards });
  }

  /** What every command that may end sessions takes: where, who issues, a fresh nonce for event ids, when. */
  private context(shard: number, now: number): EventContext {
    return { base: this.keys.base(shard), issuer: this.settings.issuer, nonce: random(9), now };
  }

  async create(signIn: SignIn, now: number): Promise<CreateResult> {
    const shard = this.keys.shardOf(signIn.userId);
    const sessionId = `s${shard}_${random(16)}`;
    const [family, secret] = [random(16), random(32)];
    const lifetime = signIn.remember ? this.settings.rememberMs : this.settings.absoluteMs;
    const idleMs = signIn.remember ? this.settings.rememberMs : this.settings.idleMs;
    const absoluteAt = now + lifetime;
    const { userId, provider } = signIn;
    const providerHash = provider?.sid
      ? providerSessionHash(provider.issuer, provider.sid)
      : 'none';
    // Indexed before the session exists, so that a logout token with only this `sid` finds the
    // user whether it comes before, during or after the sign-in's own command (which checks, in
    // the user's slot, that the provider session was not logged out meanwhile).
    if (provider?.sid) {
      const indexed = await providerSession.run(
        this.redis,
        [this.keys.providerSessionUser(providerHash)],
        { op: 'sign_in', user: userId, until: absoluteAt },
      );
      if ('ok' in indexed && !indexed.ok) return { kind: 'provider_ended' };
    }
    const reply = await this.durability.run(
      createSession,
      [
        this.keys.userSessions(userId),
        this.keys.plan(userId),
        this.keys.revokedBefore(userId),
        this.keys.expiries(shard),
        this.keys.outbox(shard),
        this.keys.session(shard, sessionId),
        this.keys.refreshFamily(shard, hashToken(family)),
        this.keys.idTokenUse(userId, signIn.idToken?.use ?? 'none'),
        this.keys.providerSessionEnded(userId, providerHash),
      ],
      {
        ...this.context(shard, now),
        ...(provider
          ? {
              idp_iss: provider.issuer,
              idp_sub: provider.sub,
              ...(provider.sid ? { idp_sid: provider.sid } : {}),
            }
          : {}),
        ...(signIn.idToken ? { id_token_until: signIn.idToken.until } : {}),
        ...(signIn.replaceSessionId ? { replace: signIn.replaceSessionId } : {}),
        user: userId,
        sid: sessionId,
        family: hashToken(family),
        secret: hashToken(secret),
        default_max: this.settings.defaultPlan.max_devices,
        default_policy: this.settings.defaultPlan.policy,
        idle_ms: idleMs,
        absolute_at: absoluteAt,
        remember: signIn.remember ? '1' : '0',
        roles: JSON.stringify(signIn.roles),
        device_name: signIn.device.name,
        device_platform: signIn.device.platform ?? '',
        user_agent: signIn.userAgent ?? '',
        ip: signIn.ip ?? '',
        format: signIn.tokenFormat ?? 'jwt',
      },
    );
    if (reply.kind === 'replayed') return { kind: 'replayed' };
    if (reply.kind === 'provider_ended') return { kind: 'provider_ended' };
    if (reply.kind === 'rejected') {
      return {
        kind: 'rejected',
        sessions: (await this.views(shard, reply.sessions)).filter((v) => v !== undefined),
      };
    }
    return {
      kind: 'created',
      sessionId,
      refreshToken: refreshToken(shard, family, secret),
      userId,
      roles: signIn.roles,
      absoluteAt,
      issuedAt: reply.iat,
      tokenFormat: signIn.tokenFormat ?? 'jwt',
      evicted: reply.evicted,
    };
  }

  async rotate(presented: string, now: number): Promise<RotateResult> {
    const token = this.keys.parseRefreshToken(presented);
    if (token === undefined) return { kind: 'invalid' };
    const { shard, family, secret } = token;
    const next = random(32);
    const reply = await this.durability.run(
      rotateRefresh,
      [
        this.keys.refreshFamily(shard, hashToken(family)),
        this.keys.expiries(shard),
        this.keys.outbox(shard),
      ],
      {
        ...this.context(shard, now),
        secret: hashToken(secret),
        next: hashToken(next),
        grace_ms: this.settings.graceMs,
      },
    );
    switch (reply.kind) {
      case 'rotated':
        return {
          kind: 'rotated',
          refreshToken: refreshToken(shard, family, next),
          sessionId: reply.sid,
          userId: reply.user,
          roles: JSON.parse(reply.roles) as string[],
          absoluteAt: reply.absolute_at,
          issuedAt: reply.iat,
          tokenFormat: reply.format,
        };
      case 'reused':
        return { kind: 'reused', sessionId: reply.sid };
      case 'invalid':
        return { kind: 'invalid' };
    }
  }

  /** Ends a session (of `owner` only, when given). Resolves with its user id, or undefined if there was none. */
  async end(
    sessionId: string,
    how: { initiator: Initiator; reason: string; owner?: string },
    now: number,
  ): Promise<string | undefined> {
    const shard = this.keys.sessionShard(sessionId);
    if (shard === undefined) return undefined;
    const { user } = await this.durability.run(
      endSession,
      [this.keys.session(shard, sessionId), this.keys.expiries(shard), this.keys.outbox(shard)],
      {
        ...this.context(shard, now),
        sid: sessionId,
        entity: how.initiator,
        reason: how.reason,
        ...(how.owner === undefined ? {} : { owner: how.owner }),
      },
    );
    return user === false ? undefined : user;
  }

  /**
   * A logout token with `sid` first marks the provider session ended in its index (outside the
   * user's slot), which also names the user when the token has no `sub`; then one command in
   * the user's slot ends the matching sessions. A retry after a failure between the two finds
   * the user again (the index keeps it).
   */
  async endProviderSessions(
    logout: ProviderLogout,
    how: { initiator: Initiator; reason: string },
    now: number,
  ): Promise<number> {
    const memoryMs = this.settings.providerLogoutMemoryMs;
    const providerHash = logout.sid ? providerSessionHash(logout.issuer, logout.sid) : 'none';
    let userId = logout.userId;
    if (logout.sid) {
      const indexed = await providerSession.run(
        this.redis,
        [this.keys.providerSessionUser(providerHash)],
        { op: 'logout', now, marker_ms: memoryMs },
      );
      if (userId === undefined && 'user' in indexed && indexed.user !== false) {
        userId = indexed.user;
      }
    }
    if (userId === undefined) return 0;
    const shard = this.keys.shardOf(userId);
    const { ended } = await this.durability.run(
      endProviderSessions,
      [
        this.keys.userSessions(userId),
        this.keys.expiries(shard),
        this.keys.outbox(shard),
        this.keys.providerSessionEnded(userId, providerHash),
      ],
      {
        ...this.context(shard, now),
        user: userId,
        idp_iss: logout.issuer,
        ...(logout.sid ? { idp_sid: logout.sid } : {}),
        ...(logout.sub ? { idp_sub: logout.sub } : {}),
        entity: how.initiator,
        reason: how.reason,
        marker_ms: memoryMs,
      },
    );
    return ended;
  }

  async endAll(
    userId: string,
    how: { initiator: Initiator; reason: string },
    now: number,
  ): Promise<number> {
    const shard = this.keys.shardOf(userId);
    const { ended } = await this.durability.run(
      endAllSessions,
      [
        this.keys.userSessions(userId),
        this.keys.revokedBefore(userId),
        this.keys.expiries(shard),
        this.keys.outbox(shard),
      ],
      {
        ...this.context(shard, now),
        user: userId,
        entity: how.initiator,
        reason: how.reason,
        retention_ms: this.settings.revocationRetentionMs,
      },
    );
    return ended;
  }

  /** The user's live sessions, most recently active first (expired ones are ended on the way). */
  async list(userId: string, now: number): Promise<SessionView[]> {
    const shard = this.keys.shardOf(userId);
    await this.endExpired(shard, userId, now);
    const ids = await this.redis.zrevrange(this.keys.userSessions(userId), 0, -1);
    return (await this.views(shard, ids)).filter((v) => v !== undefined);
  }

  /** The owner of a live session, or undefined when it ended or expired. */
  async ownerOf(sessionId: string, now: number): Promise<string | undefined> {
    const shard = this.keys.sessionShard(sessionId);
    if (shard === undefined) return undefined;
    const [user, lastActive, idleMs, absoluteAt] = await this.redis.hmget(
      this.keys.session(shard, sessionId),
      'user',
      'last_active_at',
      'idle_ms',
      'absolute_at',
    );
    if (!user) return undefined;
    const deadline = Math.min(Number(lastActive) + Number(idleMs), Number(absoluteAt));
    return deadline > now ? user : undefined;
  }

  /** The session a refresh token (of any link of its family) belongs to, if any. */
  async sessionOfRefreshToken(presented: string): Promise<string | undefined> {
    const token = this.keys.parseRefreshToken(presented);
    if (token === undefined) return undefined;
    const family = this.keys.refreshFamily(token.shard, hashToken(token.family));
    return (await this.redis.hget(family, 'sid')) ?? undefined;
  }

  /**
   * Opaque access tokens are `at_<secret>.<shard>` (session-keys.ts): the key of one is in its
   * session's hash slot, written by a command that checks the session is there, and deleted by
   * every command that ends the session.
   */
  async storeOpaqueToken(
    sessionId: string,
    accessToken: { jwt: string; expiresAt: number },
    now: number,
  ): Promise<string | undefined> {
    const shard = this.keys.sessionShard(sessionId);
    if (shard === undefined) return undefined;
    const token = opaqueToken(shard, random(32));
    const hash = hashToken(token);
    const { stored } = await storeAccessToken.run(
      this.redis,
      [this.keys.session(shard, sessionId), this.keys.opaqueToken(shard, hash)],
      { now, sid: sessionId, hash, jwt: accessToken.jwt, exp: accessToken.expiresAt },
    );
    return stored ? token : undefined;
  }

  async resolveOpaqueToken(token: string, now: number): Promise<OpaqueTokenTarget | undefined> {
    const parsed = this.keys.parseOpaqueToken(token);
    if (parsed === undefined) return undefined;
    const [jwt, sessionId, exp] = await this.redis.hmget(
      this.keys.opaqueToken(parsed.shard, hashToken(token)),
      'jwt',
      'sid',
      'exp',
    );
    if (!jwt || !sessionId || !(Number(exp) > now)) return undefined;
    const userId = await this.ownerOf(sessionId, now);
    return userId === undefined ? undefined : { jwt, sessionId, userId };
  }

  async plan(userId: string): Promise<Plan> {
    const [max, policy] = await this.redis.hmget(this.keys.plan(userId), 'max_devices', 'policy');
    return {
      max_devices: max ? Number(max) : this.settings.defaultPlan.max_devices,
      policy:
        policy === 'reject' || policy === 'evict_oldest'
          ? policy
          : this.settings.defaultPlan.policy,
    };
  }

  async setPlan(userId: string, plan: Plan): Promise<void> {
    await this.redis.hset(
      this.keys.plan(userId),
      'max_devices',
      plan.max_devices,
      'policy',
      plan.policy,
    );
  }

  /** Ends every session past its idle or absolute deadline, in every shard; returns how many users had some. */
  async sweep(now: number, perShard = 200): Promise<number> {
    let users = 0;
    for (let shard = 0; shard < this.keys.layout.shards; shard += 1) {
      const { users: expired } = await expiredUsers.run(this.redis, [this.keys.expiries(shard)], {
        base: this.keys.base(shard),
        now,
        limit: perShard,
      });
      for (const user of expired) await this.endExpired(shard, user, now);
      users += expired.length;
    }
    return users;
  }

  private async endExpired(shard: number, userId: string, now: number): Promise<void> {
    await this.durability.run(
      endExpired,
      [this.keys.userSessions(userId), this.keys.expiries(shard), this.keys.outbox(shard)],
      { ...this.context(shard, now), user: userId },
    );
  }

  private async views(shard: number, ids: string[]): Promise<(SessionView | undefined)[]> {
    if (ids.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hgetall(this.keys.session(shard, id));
    const rows = (await pipeline.exec()) ?? [];
    return rows.map(([, row], i) => {
      const s = row as Record<string, string>;
      if (!s.user) return undefined;
      return {
        session_id: ids[i] ?? '',
        device: {
          name: s.device_name ?? '',
          ...(s.device_platform ? { platform: s.device_platform } : {}),
        },
        user_agent: s.user_agent || null,
        ip: s.ip || null,
        created_at: new Date(Number(s.created_at)).toISOString(),
        last_active_at: new Date(Number(s.last_active_at)).toISOString(),
      };
    });
  }
}
