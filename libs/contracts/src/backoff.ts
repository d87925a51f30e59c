import { setTimeout as sleep } from 'node:timers/promises';

/**
 * How much of each wait is random, so that clients failing together do not retry together:
 * `equal` waits between half the ceiling and the ceiling (waits still grow, never near zero),
 * `full` between zero and the ceiling (spreads clients the most), `none` the ceiling itself.
 */
export type Jitter = 'equal' | 'full' | 'none';

export interface BackoffOptions {
  /** The first wait's ceiling; it doubles with each further attempt. */
  initialMs: number;
  /** No wait is longer than this. */
  maxMs: number;
  /** Default `equal`. */
  jitter?: Jitter;
  /** A source of numbers in [0, 1), for tests. */
  random?: () => number;
}

/**
 * The wait after failed attempt `attempt` (1, 2, …): exponential, capped, with jitter. The
 * ceiling is `min(maxMs, initialMs × 2^(attempt − 1))`.
 */
export function backoffDelay(attempt: number, options: BackoffOptions): number {
  const { initialMs, maxMs, jitter = 'equal', random = Math.random } = options;
  const doublings = Math.min(Math.max(Math.floor(attempt), 1) - 1, 30);
  const ceiling = Math.min(maxMs, initialMs * 2 ** doublings);
  switch (jitter) {
    case 'equal':
      return Math.round(ceiling / 2 + (random() * ceiling) / 2);
    case 'full':
      return Math.round(random() * ceiling);
    case 'none':
      return ceiling;
  }
}

/**
 * Waits `ms`, or less when `signal` aborts first (a shutdown never waits out a backoff).
 * Resolves true when the whole time passed, false when cut short.
 */
export async function pause(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return false;
  try {
    await sleep(ms, undefined, { signal });
    return true;
  } catch (error) {
    if (signal?.aborted) return false;
    throw error;
  }
}

export interface RetryFailure {
  /** The attempt that failed: 1 for the first. */
  attempt: number;
  error: unknown;
  /** How long `retry` waits before the next attempt. */
  delayMs: number;
}

export interface RetryOptions extends BackoffOptions {
  /** Retries after the first attempt before giving up; unbounded (until it works) when absent. */
  retries?: number;
  /** Whether a failure is worth another attempt; one that is not is thrown at once. Default: all are. */
  retryable?: (error: unknown) => boolean;
  /**
   * Ends the retrying: no attempt starts once it has aborted, and the wait in progress ends at
   * once. The attempt in flight is not interrupted, and the first one is always made (an
   * aborted caller may still finish what it started). `retry` then rejects with the last
   * attempt's error; check `signal.aborted` to tell a stop from a failure.
   */
  signal?: AbortSignal;
  /** Called after each failed attempt that will be retried, before the wait (logs, metrics). */
  onRetry?: (failure: RetryFailure) => void;
}

/**
 * Calls `attempt` (with its number, from 1) until it resolves, waiting {@link backoffDelay}
 * between failures; rejects with the last error when the retries are used up, a failure is
 * not `retryable`, or `signal` aborts.
 */
export async function retry<T>(
  attempt: (attempt: number) => Promise<T>,
  options: RetryOptions,
): Promise<T> {
  const { retries = Infinity, retryable = () => true, signal, onRetry } = options;
  for (let n = 1; ; n += 1) {
    try {
      return await attempt(n);
    } catch (error) {
      if (signal?.aborted || n > retries || !retryable(error)) throw error;
      const delayMs = backoffDelay(n, options);
      onRetry?.({ attempt: n, error, delayMs });
      if (!(await pause(delayMs, signal))) throw error;
    }
  }
}
