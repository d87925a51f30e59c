import type { RedisClient } from '@app/redis';
import { createHash, randomBytes } from 'node:crypto';

/** What the gateway keeps server-side for one cookie session; the browser holds only the handle. */
export interface CookieSession {
  access_token: string;
  refresh_token: string;
  session_id: string;
  sub: string;
  roles: string[];
  /** The access token's `iat` and `exp` (epoch seconds). */
  iat: number;
  exp: number;
  csrf_token: string;
  /** When this entry (and the cookie session) ends, epoch ms. */
  expires_at: number;
  /** Signed in through the OpenID provider: its ID token, the `id_token_hint` of its logout. */
  id_token?: string;
}

/** A new cookie value: 256 random bits, base64url. */
export const newHandle = (): string => randomBytes(32).toString('base64url');

const HANDLE = /^[A-Za-z0-9_-]{43}$/;

/**
 * Cookie sessions in Redis under the gateway's own prefix. The key is the SHA-256 of the
 * handle, so a read of Redis gives no cookie that works; the entry lives as long as the
 * session may (its refresh token's lifetime).
 */
export class TokenStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
  ) {}

  key(handle: string): string {
    return `${this.prefix}bff:${createHash('sha256').update(handle).digest('hex')}`;
  }

  static isHandle(value: string | undefined): value is string {
    return value !== undefined && HANDLE.test(value);
  }

  async create(handle: string, session: CookieSession): Promise<void> {
    const ttlMs = Math.max(1, session.expires_at - Date.now());
    await this.redis.set(this.key(handle), JSON.stringify(session), 'PX', ttlMs);
  }

  async get(handle: string): Promise<CookieSession | undefined> {
    const value = await this.redis.get(this.key(handle));
    return value === null ? undefined : (JSON.parse(value) as CookieSession);
  }

  /** Stores a refreshed pair, keeping the entry's expiry; nothing when the entry is gone. */
  async update(handle: string, session: CookieSession): Promise<void> {
    await this.redis.set(this.key(handle), JSON.stringify(session), 'KEEPTTL', 'XX');
  }

  async delete(handle: string): Promise<void> {
    await this.redis.del(this.key(handle));
  }
}
