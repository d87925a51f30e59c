import { randomBytes } from 'node:crypto';
import { waitFor } from '../../../scripts/lib/process.ts';

export { StopWaiting } from '../../../scripts/lib/process.ts';

export interface TestInfra {
  kafkaBrokers: string[];
  redisUrl: string;
}

/**
 * Where the run's real Kafka broker and Redis are. The Jest global setup
 * (test/setup/global-setup.ts) starts them, or takes KAFKA_BROKERS / REDIS_URL as given.
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

/**
 * Polls `probe` until it returns a value other than `undefined` or `false`, and returns it;
 * throws with `what` after `timeoutMs`, or at once when the probe throws `StopWaiting`. A
 * bounded wait for something asynchronous, not a timing assertion. The launchers' poller
 * (`waitFor`) with the tests' defaults: one poller for the whole repository.
 */
export function eventually<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  { timeoutMs = 20_000, intervalMs = 25 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  return waitFor(what, probe, { timeoutMs, intervalMs });
}
