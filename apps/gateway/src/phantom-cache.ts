import { createHash } from 'node:crypto';

/** The key of an opaque token in the cache: its SHA-256, never the token itself. */
export const phantomKey = (token: string) => createHash('sha256').update(token).digest('hex');

interface Entry {
  jwt: string;
  /** The JWT's `exp`, in ms: the entry is never served at or after it. */
  expiresAt: number;
}

/**
 * Opaque token (by SHA-256) → its access JWT: at most `max` entries, least recently used
 * dropped first; an entry dies with its JWT's `exp` and a hit never extends it. Concurrent
 * misses for one token share one exchange (`flight`).
 */
export class PhantomCache {
  private readonly entries = new Map<string, Entry>();
  private readonly flights = new Map<string, Promise<string | undefined>>();

  constructor(
    private readonly max: number,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  get(key: string): string | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    this.entries.delete(key);
    if (entry.expiresAt <= this.now()) return undefined;
    this.entries.set(key, entry); // most recently used last
    return entry.jwt;
  }

  set(key: string, jwt: string, expSeconds: number): void {
    const expiresAt = expSeconds * 1000;
    if (expiresAt <= this.now()) return;
    this.entries.delete(key);
    this.entries.set(key, { jwt, expiresAt });
    while (this.entries.size > this.max) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  /** One exchange per key at a time: concurrent callers share its promise. */
  flight(key: string, exchange: () => Promise<string | undefined>): Promise<string | undefined> {
    let flight = this.flights.get(key);
    if (flight === undefined) {
      flight = exchange().finally(() => this.flights.delete(key));
      this.flights.set(key, flight);
    }
    return flight;
  }
}
