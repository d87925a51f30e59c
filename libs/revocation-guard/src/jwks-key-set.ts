import { importJWK, type CryptoKey } from 'jose';

/** The algorithms access tokens may use, each pinned to its key type (no `alg` from the token). */
const ALGORITHM_OF_CURVE: Record<string, 'EdDSA' | 'ES256'> = {
  'OKP/Ed25519': 'EdDSA',
  'EC/P-256': 'ES256',
};
export const ACCESS_TOKEN_ALGORITHMS = ['EdDSA', 'ES256'];

export interface VerificationKey {
  kid: string;
  alg: 'EdDSA' | 'ES256';
  key: CryptoKey;
}

export interface Logger {
  log(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export interface JwksKeySetOptions {
  url: string;
  /** Background refresh period, so rotated-out keys go and announced keys arrive. */
  refreshIntervalMs?: number;
  /** At most one refetch for an unknown `kid` per this period (forged `kid`s cannot hammer the issuer). */
  unknownKidCooldownMs?: number;
  /** One fetch gives up after this long. */
  fetchTimeoutMs?: number;
  logger?: Logger;
  now?: () => number;
}

/** Why the key set could not be read; the message names the URL, never a key. */
export class JwksError extends Error {
  override readonly name = 'JwksError';
}

/**
 * The issuer's public keys, fetched before the guard is ready and refreshed in the background,
 * so verifying a token never waits on the network — except once, rate-limited, when a token
 * names a `kid` not seen yet (a key that started signing since the last refresh).
 */
export class JwksKeySet {
  private keys = new Map<string, VerificationKey>();
  private readonly url: string;
  private readonly refreshIntervalMs: number;
  private readonly cooldownMs: number;
  private readonly fetchTimeoutMs: number;
  private readonly logger: Logger | undefined;
  private readonly now: () => number;
  private inFlight: Promise<void> | undefined;
  private lastUnknownKidFetch = -Infinity;
  private timer: NodeJS.Timeout | undefined;
  private loadedAt: number | undefined;

  constructor(options: JwksKeySetOptions) {
    this.url = options.url;
    this.refreshIntervalMs = options.refreshIntervalMs ?? 5 * 60_000;
    this.cooldownMs = options.unknownKidCooldownMs ?? 10_000;
    this.fetchTimeoutMs = options.fetchTimeoutMs ?? 5_000;
    this.logger = options.logger;
    this.now = options.now ?? Date.now;
  }

  /** Fetches the keys, retrying until it succeeds or `signal` aborts, then refreshes periodically. */
  async start(signal?: AbortSignal): Promise<void> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        await this.refresh();
        break;
      } catch (error) {
        if (signal?.aborted) throw error;
        if (attempt === 1 || attempt % 10 === 0)
          this.logger?.warn(`${(error as Error).message}; retrying (attempt ${attempt})`);
        await new Promise((resolve) => setTimeout(resolve, Math.min(2_000, 100 * attempt)));
        if (signal?.aborted) throw error;
      }
    }
    this.timer = setInterval(() => {
      this.refresh().catch((error: unknown) => {
        this.logger?.warn(`keeping the previous keys: ${(error as Error).message}`);
      });
    }, this.refreshIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  get ready(): boolean {
    return this.loadedAt !== undefined;
  }

  get size(): number {
    return this.keys.size;
  }

  get(kid: string): VerificationKey | undefined {
    return this.keys.get(kid);
  }

  /**
   * For a token whose `kid` is unknown: refetches once per cooldown (concurrent callers share
   * the fetch) and returns the key if it has appeared; undefined otherwise, at once.
   */
  async getAfterRefetch(kid: string): Promise<VerificationKey | undefined> {
    if (this.inFlight === undefined) {
      if (this.now() - this.lastUnknownKidFetch < this.cooldownMs) return undefined;
      this.lastUnknownKidFetch = this.now();
    }
    await this.refresh().catch((error: unknown) => {
      this.logger?.warn(`refetch for an unknown kid failed: ${(error as Error).message}`);
    });
    return this.keys.get(kid);
  }

  /** One fetch at a time; callers arriving meanwhile wait for the one in flight. */
  refresh(): Promise<void> {
    this.inFlight ??= this.fetchKeys().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async fetchKeys(): Promise<void> {
    let body: unknown;
    try {
      const response = await fetch(this.url, {
        signal: AbortSignal.timeout(this.fetchTimeoutMs),
        headers: { accept: 'application/json' },
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      body = await response.json();
    } catch (error) {
      throw new JwksError(`cannot fetch the JWKS at ${this.url}: ${(error as Error).message}`);
    }
    const list = (body as { keys?: unknown } | null)?.keys;
    if (!Array.isArray(list)) throw new JwksError(`the JWKS at ${this.url} has no "keys" array`);
    const next = new Map<string, VerificationKey>();
    for (const jwk of list as unknown[]) {
      if (typeof jwk !== 'object' || jwk === null) continue;
      const key = await importVerificationKey(jwk as Record<string, unknown>);
      if (key) next.set(key.kid, key);
    }
    if (next.size === 0) throw new JwksError(`the JWKS at ${this.url} has no usable signing key`);
    this.keys = next;
    this.loadedAt = this.now();
  }
}

/** An Ed25519 or P-256 signing key with a `kid`; anything else is skipped (not an error). */
async function importVerificationKey(
  jwk: Record<string, unknown>,
): Promise<VerificationKey | undefined> {
  const { kid, kty, crv, use } = jwk;
  if (typeof kid !== 'string' || kid === '' || (use !== undefined && use !== 'sig'))
    return undefined;
  const alg = ALGORITHM_OF_CURVE[`${String(kty)}/${String(crv)}`];
  if (alg === undefined || (jwk.alg !== undefined && jwk.alg !== alg)) return undefined;
  try {
    const publicPart = { ...jwk };
    delete publicPart.d; // never import a private part, even if one is served
    const key = await importJWK(publicPart, alg);
    if (key instanceof Uint8Array) return undefined;
    return { kid, alg, key };
  } catch {
    return undefined;
  }
}
