import { buildRevocationEvent, type RevocationEvent } from '@app/contracts';
import { createHash, randomBytes } from 'node:crypto';
import type { SessionRepository } from '../src/sessions/session.repository';
import type {
  CreateResult,
  Initiator,
  OpaqueTokenTarget,
  Plan,
  ProviderLogout,
  ProviderSession,
  RotateResult,
  SessionView,
  SignIn,
  TokenFormat,
} from '../src/sessions/session.types';
import type { SessionsSettings } from '../src/sessions/sessions.settings';

/** The settings the repository's rules depend on. */
export type SessionRules = Pick<
  SessionsSettings,
  | 'issuer'
  | 'idleMs'
  | 'absoluteMs'
  | 'rememberMs'
  | 'defaultPlan'
  | 'graceMs'
  | 'revocationRetentionMs'
  | 'providerLogoutMemoryMs'
>;

interface StoredSession {
  user: string;
  createdAt: number;
  lastActiveAt: number;
  /** `iat` (seconds) of the session's latest token. */
  iat: number;
  idleMs: number;
  absoluteAt: number;
  roles: string[];
  view: Omit<SessionView, 'created_at' | 'last_active_at' | 'session_id'>;
  family: string;
  tokenFormat: TokenFormat;
  /** Hashes of the session's opaque access tokens → their expiry (ms). */
  opaqueTokens: Map<string, number>;
  /** An OIDC sign-in's provider session. */
  provider: ProviderSession | undefined;
}

interface Family {
  sid: string;
  /** Secret → 'active', or when it was rotated (ms). */
  secrets: Map<string, 'active' | number>;
}

const MAX_ROTATED = 8;
const random = (bytes: number) => randomBytes(bytes).toString('base64url');
const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');

/**
 * The session rules in this process's memory: a fake of {@link SessionRepository} for unit
 * tests, faithful to the Redis implementation (the same conformance suite runs against both).
 * Not for production: nothing is shared or durable. `events` holds what the Redis
 * implementation writes to the outbox.
 */
export class InMemorySessionRepository implements SessionRepository {
  readonly events: RevocationEvent[] = [];
  private readonly sessions = new Map<string, StoredSession>();
  private readonly families = new Map<string, Family>();
  private readonly plans = new Map<string, Plan>();
  private readonly revokedBefore = new Map<string, { at: number; until: number }>();
  private readonly idTokenUses = new Map<string, number>();
  /** Opaque access tokens by their hash, as the Redis store keeps them (no plain token). */
  private readonly opaqueTokens = new Map<string, { jwt: string; sid: string; exp: number }>();

  /** Provider sessions (issuer and `sid`) → the user who signed in with one, and whether it ended. */
  private readonly providerSessions = new Map<string, { user?: string; endedUntil?: number }>();

  constructor(private readonly rules: SessionRules) {}

  create(signIn: SignIn, now: number): Promise<CreateResult> {
    const { userId, provider } = signIn;
    const providerKey = provider?.sid ? `${provider.issuer}\0${provider.sid}` : undefined;
    const known = providerKey === undefined ? undefined : this.providerSessions.get(providerKey);
    if ((known?.endedUntil ?? -Infinity) > now) return Promise.resolve({ kind: 'provider_ended' });
    if (providerKey !== undefined) this.providerSessions.set(providerKey, { user: userId });
    if (signIn.idToken && (this.idTokenUses.get(signIn.idToken.use) ?? -Infinity) > now)
      return Promise.resolve({ kind: 'replayed' });
    this.endExpired(userId, now);
    const replaced = signIn.replaceSessionId;
    if (replaced !== undefined && this.sessions.get(replaced)?.user === userId)
      this.endOne(replaced, 'user', 'replaced_at_sign_in', now);
    const plan = this.plans.get(userId) ?? this.rules.defaultPlan;
    const live = this.liveOf(userId);
    let evicted = 0;
    if (live.length >= plan.max_devices) {
      if (plan.policy === 'reject')
        return Promise.resolve({ kind: 'rejected', sessions: this.views(live) });
      for (const [sid] of live.slice(0, live.length - plan.max_devices + 1)) {
        this.endOne(sid, 'policy', 'device_limit', now);
        evicted += 1;
      }
    }
    const lifetime = signIn.remember ? this.rules.rememberMs : this.rules.absoluteMs;
    const sessionId = `s0_${random(16)}`;
    const [family, secret] = [random(16), random(32)];
    const issuedAt = this.tokenIat(userId, now);
    this.sessions.set(sessionId, {
      user: userId,
      createdAt: now,
      lastActiveAt: now,
      iat: issuedAt,
      idleMs: signIn.remember ? this.rules.rememberMs : this.rules.idleMs,
      absoluteAt: now + lifetime,
      roles: signIn.roles,
      view: {
        device: {
          name: signIn.device.name,
          ...(signIn.device.platform ? { platform: signIn.device.platform } : {}),
        },
        user_agent: signIn.userAgent ?? null,
        ip: signIn.ip ?? null,
      },
      family,
      tokenFormat: signIn.tokenFormat ?? 'jwt',
      opaqueTokens: new Map(),
      provider,
    });
    this.families.set(family, { sid: sessionId, secrets: new Map([[secret, 'active']]) });
    if (signIn.idToken) this.idTokenUses.set(signIn.idToken.use, signIn.idToken.until);
    return Promise.resolve({
      kind: 'created',
      sessionId,
      refreshToken: `rt0_${family}.${secret}`,
      userId,
      roles: signIn.roles,
      absoluteAt: now + lifetime,
      issuedAt,
      tokenFormat: signIn.tokenFormat ?? 'jwt',
      evicted,
    });
  }

  rotate(refreshToken: string, now: number): Promise<RotateResult> {
    const match = /^rt\d+_([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/.exec(refreshToken);
    const family = match?.[1] === undefined ? undefined : this.families.get(match[1]);
    const session = family && this.sessions.get(family.sid);
    if (!match?.[1] || !match[2] || !family || !session)
      return Promise.resolve({ kind: 'invalid' });
    const sid = family.sid;
    if (this.deadline(session) <= now) {
      this.endOne(sid, 'system', 'expired', now);
      return Promise.resolve({ kind: 'invalid' });
    }
    const state = family.secrets.get(match[2]);
    if (state === 'active') family.secrets.set(match[2], now);
    else if (state === undefined || now - state > this.rules.graceMs) {
      this.endOne(sid, 'system', 'refresh_token_reuse', now);
      return Promise.resolve({ kind: 'reused', sessionId: sid });
    }
    // Rotated secrets are forgotten past the grace window, and beyond the newest MAX_ROTATED.
    const rotated: [string, number][] = [];
    for (const [secret, at] of family.secrets) {
      if (at === 'active') continue;
      if (now - at > this.rules.graceMs) family.secrets.delete(secret);
      else rotated.push([secret, at]);
    }
    for (const [secret] of rotated.sort((x, y) => y[1] - x[1]).slice(MAX_ROTATED))
      family.secrets.delete(secret);
    const next = random(32);
    family.secrets.set(next, 'active');
    session.lastActiveAt = now;
    session.iat = this.tokenIat(session.user, now);
    return Promise.resolve({
      kind: 'rotated',
      refreshToken: `rt0_${match[1]}.${next}`,
      sessionId: sid,
      userId: session.user,
      roles: session.roles,
      absoluteAt: session.absoluteAt,
      issuedAt: session.iat,
      tokenFormat: session.tokenFormat,
    });
  }

  end(
    sessionId: string,
    how: { initiator: Initiator; reason: string; owner?: string },
    now: number,
  ): Promise<string | undefined> {
    const session = this.sessions.get(sessionId);
    if (!session || (how.owner !== undefined && session.user !== how.owner))
      return Promise.resolve(undefined);
    this.endOne(sessionId, how.initiator, how.reason, now);
    return Promise.resolve(session.user);
  }

  endProviderSessions(
    logout: ProviderLogout,
    how: { initiator: Initiator; reason: string },
    now: number,
  ): Promise<number> {
    let userId = logout.userId;
    if (logout.sid !== undefined) {
      const key = `${logout.issuer}\0${logout.sid}`;
      const known = this.providerSessions.get(key);
      userId ??= known?.user;
      this.providerSessions.set(key, {
        ...(known?.user === undefined ? {} : { user: known.user }),
        endedUntil: now + this.rules.providerLogoutMemoryMs,
      });
    }
    if (userId === undefined) return Promise.resolve(0);
    let ended = 0;
    for (const [sid, session] of this.liveOf(userId)) {
      const p = session.provider;
      const match =
        logout.sid !== undefined
          ? p?.issuer === logout.issuer && p.sid === logout.sid
          : p === undefined || p.issuer === logout.issuer;
      if (!match || (logout.sub !== undefined && p !== undefined && p.sub !== logout.sub)) continue;
      this.endOne(sid, how.initiator, how.reason, now);
      ended += 1;
    }
    return Promise.resolve(ended);
  }

  endAll(
    userId: string,
    how: { initiator: Initiator; reason: string },
    now: number,
  ): Promise<number> {
    const live = this.liveOf(userId);
    for (const [sid, session] of live) {
      // A token stamped past `now` (created in this second after an earlier logout-all): the
      // user-wide event would not cover it, so the session gets an event of its own.
      if (session.iat * 1000 > now) this.emit(userId, sid, how.initiator, how.reason, now);
      this.forget(sid);
    }
    const previous = this.revokedBefore.get(userId)?.at ?? 0;
    this.revokedBefore.set(userId, {
      at: Math.max(previous, now),
      until: now + this.rules.revocationRetentionMs,
    });
    this.emit(userId, undefined, how.initiator, how.reason, now);
    return Promise.resolve(live.length);
  }

  list(userId: string, now: number): Promise<SessionView[]> {
    this.endExpired(userId, now);
    return Promise.resolve(this.views(this.liveOf(userId).reverse()));
  }

  ownerOf(sessionId: string, now: number): Promise<string | undefined> {
    const session = this.sessions.get(sessionId);
    return Promise.resolve(session && this.deadline(session) > now ? session.user : undefined);
  }

  sessionOfRefreshToken(refreshToken: string): Promise<string | undefined> {
    const family = /^rt\d+_([A-Za-z0-9_-]{22})\./.exec(refreshToken)?.[1];
    return Promise.resolve(family === undefined ? undefined : this.families.get(family)?.sid);
  }

  storeOpaqueToken(
    sessionId: string,
    accessToken: { jwt: string; expiresAt: number },
    now: number,
  ): Promise<string | undefined> {
    const session = this.sessions.get(sessionId);
    if (!session) return Promise.resolve(undefined);
    for (const [hash, exp] of session.opaqueTokens) {
      if (exp > now) continue;
      session.opaqueTokens.delete(hash);
      this.opaqueTokens.delete(hash);
    }
    const token = `at_${random(32)}.0`;
    const hash = sha256(token);
    session.opaqueTokens.set(hash, accessToken.expiresAt);
    this.opaqueTokens.set(hash, {
      jwt: accessToken.jwt,
      sid: sessionId,
      exp: accessToken.expiresAt,
    });
    return Promise.resolve(token);
  }

  async resolveOpaqueToken(token: string, now: number): Promise<OpaqueTokenTarget | undefined> {
    if (!/^at_[A-Za-z0-9_-]{43}\.0$/.test(token)) return undefined;
    const stored = this.opaqueTokens.get(sha256(token));
    if (!stored || !(stored.exp > now)) return undefined;
    const userId = await this.ownerOf(stored.sid, now);
    return userId === undefined ? undefined : { jwt: stored.jwt, sessionId: stored.sid, userId };
  }

  plan(userId: string): Promise<Plan> {
    return Promise.resolve(this.plans.get(userId) ?? this.rules.defaultPlan);
  }

  setPlan(userId: string, plan: Plan): Promise<void> {
    this.plans.set(userId, plan);
    return Promise.resolve();
  }

  sweep(now: number): Promise<number> {
    const users = new Set(
      [...this.sessions.values()].filter((s) => this.deadline(s) <= now).map((s) => s.user),
    );
    for (const user of users) this.endExpired(user, now);
    return Promise.resolve(users.size);
  }

  /** The user's live sessions, least recently active first (ties by id, as a Redis zset). */
  private liveOf(userId: string): [string, StoredSession][] {
    return [...this.sessions]
      .filter(([, session]) => session.user === userId)
      .sort(([a, x], [b, y]) => x.lastActiveAt - y.lastActiveAt || (a < b ? -1 : 1));
  }

  private deadline(session: StoredSession): number {
    return Math.min(session.lastActiveAt + session.idleMs, session.absoluteAt);
  }

  private tokenIat(userId: string, now: number): number {
    const revoked = this.revokedBefore.get(userId);
    const before = revoked && revoked.until > now ? revoked.at : 0;
    return Math.max(Math.floor(now / 1000), Math.floor(before / 1000) + 1);
  }

  private endExpired(userId: string, now: number): void {
    for (const [sid, session] of this.liveOf(userId))
      if (this.deadline(session) <= now) this.endOne(sid, 'system', 'expired', now);
  }

  private endOne(sid: string, initiator: Initiator, reason: string, now: number): void {
    const session = this.sessions.get(sid);
    if (!session) return;
    this.forget(sid);
    this.emit(session.user, sid, initiator, reason, now);
  }

  private forget(sid: string): void {
    const session = this.sessions.get(sid);
    if (session) this.families.delete(session.family);
    for (const hash of session?.opaqueTokens.keys() ?? []) this.opaqueTokens.delete(hash);
    this.sessions.delete(sid);
  }

  private emit(
    user: string,
    sid: string | undefined,
    entity: Initiator,
    reason: string,
    at: number,
  ) {
    this.events.push(
      buildRevocationEvent({
        issuer: this.rules.issuer,
        userId: user,
        ...(sid === undefined ? {} : { sessionId: sid }),
        initiatingEntity: entity,
        reason,
        at,
      }),
    );
  }

  private views(live: [string, StoredSession][]): SessionView[] {
    return live.map(([sid, session]) => ({
      session_id: sid,
      ...session.view,
      created_at: new Date(session.createdAt).toISOString(),
      last_active_at: new Date(session.lastActiveAt).toISOString(),
    }));
  }
}
