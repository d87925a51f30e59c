import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

export interface TestInfra {
  kafkaBrokers: string[];
  redisUrl: string;
}

/**
 * Where the run's real Kafka broker and Redis are. The Jest global setup
 * (test/setup/global-setup.mjs) starts them, or takes KAFKA_BROKERS / REDIS_URL as given.
 */
export function testInfra(): TestInfra {
  const { KAFKA_BROKERS, REDIS_URL } = process.env;
  if (!KAFKA_BROKERS || !REDIS_URL) {
    throw new Error(
      'KAFKA_BROKERS and REDIS_URL are not set: run integration tests through `npm test` ' +
        '(or `npm run test:int`), whose global setup starts Kafka and Redis.',
    );
  }
  return { kafkaBrokers: KAFKA_BROKERS.split(','), redisUrl: REDIS_URL };
}

/** A name no other test file (or earlier run) uses: for topics, groups and key prefixes. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

/** Thrown by an `eventually` probe to stop waiting at once: the awaited thing can no longer happen. */
export class StopWaiting extends Error {
  override readonly name = 'StopWaiting';
}

/**
 * Polls `probe` until it returns a value other than `undefined`, and returns it; throws with
 * `what` after `timeoutMs`. A bounded wait for something asynchronous, not a timing assertion.
 */
export async function eventually<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  { timeoutMs = 20_000, intervalMs = 25 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      if (error instanceof StopWaiting) throw error;
      lastError = error;
    }
    await sleep(intervalMs);
  }
  const reason = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${reason}`);
}
