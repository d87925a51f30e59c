import { createHash, randomBytes } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { REDIS } from '@app/redis';
import type { Redis } from 'ioredis';
import type { SessionServiceEnv } from '../config';
import { SessionKeys } from './session-keys';
import {
  CREATE_SESSION,
  END_ALL_SESSIONS,
  END_EXPIRED,
  END_SESSION,
  EXPIRED_USERS,
  ROTATE_REFRESH,
} from './session-scripts';
import type {
  CreateResult,
  Initiator,
  Plan,
  RotateResult,
  SessionView,
  SignIn,
} from './session.types';

/** Refresh tokens are stored only as SHA-256: a leaked Redis does not leak usable tokens. */
export const hashToken = (token: string): string =>
  createHash('sha256').update(token).digest('hex');

const random = (bytes: number): string => randomBytes(bytes).toString('base64url');

/**
 * Sessions, refresh-token families and device limits in Redis. Every change that ends a
 * session appends its revocation event to the outbox in the same Lua script.
 */
@Injectable()
export class SessionStore {
  private readonly keys: SessionKeys;
  private readonly settings;

  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    config: ConfigService<SessionServiceEnv, true>,
  ) {
    this.keys = new SessionKeys({
      prefix: config.get('REDIS_KEY_PREFIX', { infer: true }),
      shards: config.get('OUTBOX_SHARDS', { infer: true }),
    });
    this.settings = {
      issuer: config.get('ISSUER', { infer: true }),
      idleMs: config.get('SESSION_IDLE_TIMEOUT_SECONDS', { infer: true }) * 1000,
      absoluteMs: config.get('SESSION_ABSOLUTE_TIMEOUT_SECONDS', { infer: true }) * 1000,
      rememberMs: config.get('SESSION_REMEMBER_ME_SECONDS', { infer: true }) * 1000,
      plan: {
        max_devices: config.get('DEFAULT_MAX_DEVICES', { infer: true }),
        policy: config.get('DEFAULT_DEVICE_POLICY', { infer: true }),
      } satisfies Plan,
      graceMs: config.get('REFRESH_REUSE_GRACE_SECONDS', { infer: true }) * 1000,
    };
  }

  /** ARGV prefix every script takes: where, who issues, a fresh nonce for event ids, when. */
  private common(shard: number, now: number): (string | number)[] {
    return [this.keys.base(shard), this.keys.outbox(shard), this.settings.issuer, random(9), now];
  }

  async create(signIn: SignIn, now: number): Promise<CreateResult> {
    const shard = this.keys.shardOf(signIn.userId);
    const sessionId = `s${shard}_${random(16)}`;
    const refreshToken = `rt${shard}_${random(32)}`;
    const lifetime = signIn.remember ? this.settings.rememberMs : this.settings.absoluteMs;
    const idleMs = signIn.remember ? this.settings.rememberMs : this.settings.idleMs;
    const absoluteAt = now + lifetime;
    const reply = (await CREATE_SESSION.run(
      this.redis,
      [],
      [
        ...this.common(shard, now),
        signIn.userId,
        sessionId,
        hashToken(refreshToken),
        this.settings.plan.max_devices,
        this.settings.plan.policy,
        idleMs,
        absoluteAt,
        signIn.remember ? '1' : '0',
        JSON.stringify(signIn.roles),
        signIn.device.name,
        signIn.device.platform ?? '',
        signIn.userAgent ?? '',
        signIn.ip ?? '',
      ],
    )) as [string, ...(string | number)[]];
    if (reply[0] === 'rejected') {
      const live = reply.slice(1).map(String);
      return {
        kind: 'rejected',
        sessions: (await this.views(shard, live)).filter((v) => v !== undefined),
      };
    }
    return {
      kind: 'created',
      sessionId,
      refreshToken,
      userId: signIn.userId,
      roles: signIn.roles,
      absoluteAt,
      revokedBefore: Number(reply[2]),
      evicted: Number(reply[3]),
    };
  }

  async rotate(refreshToken: string, now: number): Promise<RotateResult> {
    const shard = this.keys.refreshShard(refreshToken);
    if (shard === undefined) return { kind: 'invalid' };
    const next = `rt${shard}_${random(32)}`;
    const reply = (await ROTATE_REFRESH.run(
      this.redis,
      [],
      [...this.common(shard, now), hashToken(refreshToken), hashToken(next), this.settings.graceMs],
    )) as [string, ...string[]];
    switch (reply[0]) {
      case 'rotated':
        return {
          kind: 'rotated',
          refreshToken: next,
          sessionId: String(reply[1]),
          userId: String(reply[2]),
          roles: JSON.parse(String(reply[3])) as string[],
          absoluteAt: Number(reply[4]),
          revokedBefore: Number(reply[5]),
        };
      case 'reused':
        return { kind: 'reused', sessionId: String(reply[1]) };
      default:
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
    const user = (await END_SESSION.run(
      this.redis,
      [],
      [...this.common(shard, now), sessionId, how.initiator, how.owner ?? '', how.reason],
    )) as string | null;
    return user ?? undefined;
  }

  async endAll(
    userId: string,
    how: { initiator: Initiator; reason: string },
    now: number,
  ): Promise<number> {
    const shard = this.keys.shardOf(userId);
    return (await END_ALL_SESSIONS.run(
      this.redis,
      [],
      [...this.common(shard, now), userId, how.initiator, how.reason],
    )) as number;
  }

  /** The user's live sessions, most recently active first (expired ones are ended on the way). */
  async list(userId: string, now: number): Promise<SessionView[]> {
    const shard = this.keys.shardOf(userId);
    await END_EXPIRED.run(this.redis, [], [...this.common(shard, now), userId]);
    const ids = await this.redis.zrevrange(
      `${this.keys.base(shard)}user:${userId}:sessions`,
      0,
      -1,
    );
    return (await this.views(shard, ids)).filter((v) => v !== undefined);
  }

  /** The owner of a live session, or undefined when it ended or expired. */
  async ownerOf(sessionId: string, now: number): Promise<string | undefined> {
    const shard = this.keys.sessionShard(sessionId);
    if (shard === undefined) return undefined;
    const [user, lastActive, idleMs, absoluteAt] = await this.redis.hmget(
      `${this.keys.base(shard)}session:${sessionId}`,
      'user',
      'last_active_at',
      'idle_ms',
      'absolute_at',
    );
    if (!user) return undefined;
    const deadline = Math.min(Number(lastActive) + Number(idleMs), Number(absoluteAt));
    return deadline > now ? user : undefined;
  }

  /** The session a refresh token (active or rotated) belongs to, if any. */
  async sessionOfRefreshToken(refreshToken: string): Promise<string | undefined> {
    const shard = this.keys.refreshShard(refreshToken);
    if (shard === undefined) return undefined;
    return (
      (await this.redis.hget(
        `${this.keys.base(shard)}refresh:${hashToken(refreshToken)}`,
        'sid',
      )) ?? undefined
    );
  }

  async plan(userId: string): Promise<Plan> {
    const key = `${this.keys.base(this.keys.shardOf(userId))}user:${userId}:plan`;
    const [max, policy] = await this.redis.hmget(key, 'max_devices', 'policy');
    return {
      max_devices: max ? Number(max) : this.settings.plan.max_devices,
      policy: policy === 'reject' || policy === 'evict_oldest' ? policy : this.settings.plan.policy,
    };
  }

  async setPlan(userId: string, plan: Plan): Promise<void> {
    const key = `${this.keys.base(this.keys.shardOf(userId))}user:${userId}:plan`;
    await this.redis.hset(key, 'max_devices', plan.max_devices, 'policy', plan.policy);
  }

  /** Ends every session past its idle or absolute deadline, in every shard; returns how many users had some. */
  async sweep(now: number, perShard = 200): Promise<number> {
    let users = 0;
    for (let shard = 0; shard < this.keys.layout.shards; shard += 1) {
      const expired = (await EXPIRED_USERS.run(
        this.redis,
        [],
        [this.keys.base(shard), now, perShard],
      )) as string[];
      for (const user of expired)
        await END_EXPIRED.run(this.redis, [], [...this.common(shard, now), user]);
      users += expired.length;
    }
    return users;
  }

  private async views(shard: number, ids: string[]): Promise<(SessionView | undefined)[]> {
    if (ids.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hgetall(`${this.keys.base(shard)}session:${id}`);
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
