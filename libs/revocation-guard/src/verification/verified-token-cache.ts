import type { AccessTokenClaims } from '@app/contracts';

export interface VerifiedTokenCacheOptions {
  /** Most tokens held; the least recently used goes first. */
  maxEntries: number;
  /** Milliseconds since the epoch; injected so tests move time by hand. */
  now?: () => number;
}

interface CacheEntry {
  claims: AccessTokenClaims;
  untilMs: number;
  seq: number;
}

/**
 * Remembers tokens whose signature and claims were verified, so a token seen before costs a
 * map lookup instead of a signature check. Keyed by the whole token: a token that differs in
 * any byte is a different entry. An entry is never returned at or after its `exp`; what the
 * cache says is only "this exact token was valid when verified" — revocation is still checked
 * on every request, by the caller.
 */
export class VerifiedTokenCache {
  /**
   * Map iteration order is insertion order, so the first entry is the least recently
   * (re)inserted: the one to evict. A hit re-inserts its entry only once it has drifted into
   * the older half; a token used again and again costs one lookup, not three.
   */
  private readonly entries = new Map<string, CacheEntry>();
  private readonly maxEntries: number;
  private readonly now: () => number;
  /** Counts insertions; an entry's `seq` says how recently it was (re)inserted. */
  private seq = 0;

  constructor({ maxEntries, now = Date.now }: VerifiedTokenCacheOptions) {
    if (!Number.isInteger(maxEntries) || maxEntries < 0)
      throw new RangeError('maxEntries must be a non-negative integer');
    this.maxEntries = maxEntries;
    this.now = now;
  }

  get(token: string): AccessTokenClaims | undefined {
    const entry = this.entries.get(token);
    if (entry === undefined) return undefined;
    if (entry.untilMs <= this.now()) {
      this.entries.delete(token); // expired: dropped, verified anew
      return undefined;
    }
    if (this.seq - entry.seq >= this.maxEntries / 2) {
      this.entries.delete(token);
      entry.seq = ++this.seq;
      this.entries.set(token, entry);
    }
    return entry.claims;
  }

  /**
   * `untilMs`: when the entry stops being served — the token's `exp` by default; the verifier
   * passes an earlier instant when its `iat` is too old (max token age) before then.
   */
  set(token: string, claims: AccessTokenClaims, untilMs = claims.exp * 1000): void {
    if (this.maxEntries === 0) return;
    this.entries.delete(token);
    this.entries.set(token, { claims, untilMs, seq: ++this.seq });
    if (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done !== true) this.entries.delete(oldest.value);
    }
  }

  get size(): number {
    return this.entries.size;
  }
}
