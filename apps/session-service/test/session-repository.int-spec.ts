import { revocationEvent } from '@app/contracts';
import { testInfra, uniqueName } from '@app/testing';
import { Redis } from 'ioredis';
import { Durability } from '../src/sessions/redis/durability';
import { RedisSessionRepository } from '../src/sessions/redis/redis-session.repository';
import type { SessionsSettings } from '../src/sessions/sessions.settings';
import { describeSessionRepository, ended, type Ended } from './session-repository.conformance';

// The Redis store against the session rules, on the run's real Redis, with a key prefix of
// its own: the same suite the in-memory fake passes (in-memory-session.repository.spec.ts).
describeSessionRepository('Redis', (rules) => {
  const redis = new Redis(testInfra().redisUrl, { maxRetriesPerRequest: 1 });
  const keyPrefix = `${uniqueName('repo')}:`;
  const settings: SessionsSettings = {
    ...rules,
    keyPrefix,
    shards: 4,
    sweepIntervalMs: 60_000,
    durability: { mode: 'local', replicas: 1, timeoutMs: 1_000 },
  };
  const durability = new Durability(redis, settings);
  const repository = new RedisSessionRepository(redis, durability, settings);
  let now = Date.now();
  return {
    repository,
    now: () => now,
    advance: (ms) => {
      now += ms;
    },
    async events() {
      const all: Ended[] = [];
      for (const stream of await redis.keys(`${keyPrefix}{o*}:outbox`)) {
        for (const [, fields] of await redis.xrange(stream, '-', '+')) {
          const json = fields[fields.indexOf('event') + 1] ?? '';
          all.push(ended(revocationEvent.parse(JSON.parse(json))));
        }
      }
      return all;
    },
    async stop() {
      durability.onApplicationShutdown();
      const keys = await redis.keys(`${keyPrefix}*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    },
  };
});
