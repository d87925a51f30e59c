import { InvalidAccessTokenError, retry, type BackoffOptions } from '@app/contracts';
import {
  createRemoteJWKSet,
  customFetch,
  errors,
  type JWTVerifyGetKey,
  type RemoteJWKSet,
} from 'jose';
import type { Logger } from '../logger';

/** Waits between attempts to load the keys while the issuer is unreachable. */
const LOAD_BACKOFF: BackoffOptions = { initialMs: 100, maxMs: 2_000 };

export interface RemoteKeysOptions {
  url: string;
  /** Background refresh period, so rotated-out keys go and announced keys arrive. */
  refreshIntervalMs?: number;
  /** At most one refetch for an unknown `kid` per this period (forged `kid`s cannot hammer the issuer). */
  unknownKidCooldownMs?: number;
  /** One fetch gives up after this long. */
  fetchTimeoutMs?: number;
  logger?: Logger;
}

/**
 * Serves a JWKS with any private part removed: a key set that wrongly publishes one must not
 * make a verifier hold the issuer's private key.
 */
const publicOnly: typeof fetch = async (url, init) => {
  const response = await fetch(url, init);
  if (!response.ok) return response;
  const body = (await response.json()) as { keys?: unknown };
  if (Array.isArray(body.keys))
    body.keys = (body.keys as Record<string, unknown>[]).map((jwk) =>
      Object.fromEntries(Object.entries(jwk).filter(([member]) => member !== 'd')),
    );
  return new Response(JSON.stringify(body), {
    status: response.status,
    headers: { 'content-type': 'application/json' },
  });
};

/**
 * The issuer's public keys through jose's `createRemoteJWKSet`: fetched before the guard is
 * ready and refreshed in the background, so verifying a token never waits on the network,
 * except once, at most every `unknownKidCooldownMs` for all callers together, when a token
 * names a `kid` not seen yet (a key that started signing since the last refresh). jose picks a
 * key by `kid` and by the type the token's `alg` needs, so each key verifies only with its own
 * algorithm; tokens without a `kid` are refused before (see `verifyAccessToken`).
 */
export class RemoteKeys {
  private readonly set: RemoteJWKSet;
  private readonly refreshIntervalMs: number;
  private readonly logger: Logger | undefined;
  private readonly url: string;
  private timer: NodeJS.Timeout | undefined;

  constructor(options: RemoteKeysOptions) {
    this.url = options.url;
    this.refreshIntervalMs = options.refreshIntervalMs ?? 5 * 60_000;
    this.logger = options.logger;
    this.set = createRemoteJWKSet(new URL(options.url), {
      cooldownDuration: options.unknownKidCooldownMs ?? 10_000,
      // Never stale by age on the request path: the background refresh keeps them current.
      cacheMaxAge: Infinity,
      timeoutDuration: options.fetchTimeoutMs ?? 5_000,
      [customFetch]: publicOnly,
    });
  }

  /**
   * The key resolver for `jwtVerify`. A token whose `kid` names a key of another type than its
   * `alg` needs is told so (not "unknown key"): someone tried another algorithm with our key.
   */
  readonly resolver: JWTVerifyGetKey = async (header, token) => {
    try {
      return await this.set(header, token);
    } catch (error) {
      const known = this.set.jwks()?.keys.some((key) => key.kid === header.kid);
      if (error instanceof errors.JWKSNoMatchingKey && known)
        throw new InvalidAccessTokenError('algorithm not allowed');
      throw error;
    }
  };

  /** Fetches the keys, retrying until it succeeds or `signal` aborts, then refreshes periodically. */
  async start(signal?: AbortSignal): Promise<void> {
    await retry(
      async () => {
        await this.set.reload();
        if (this.size === 0) throw new Error('it has no usable signing key');
      },
      {
        ...LOAD_BACKOFF,
        signal,
        onRetry: ({ attempt, error }) => {
          if (attempt === 1 || attempt % 10 === 0)
            this.logger?.warn(
              `cannot use the JWKS at ${this.url} yet (${(error as Error).message}); retrying (attempt ${attempt})`,
            );
        },
      },
    );
    this.timer = setInterval(() => {
      this.set.reload().catch((error: unknown) => {
        this.logger?.warn(`keeping the previous keys of ${this.url}: ${(error as Error).message}`);
      });
    }, this.refreshIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  get ready(): boolean {
    return this.set.jwks() !== undefined;
  }

  get size(): number {
    return this.set.jwks()?.keys.length ?? 0;
  }
}
