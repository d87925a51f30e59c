import { eventually, testInfra, uniqueName } from '@app/testing';
import { Redis } from 'ioredis';

// The session service relies on Lua scripts for its atomic steps; this proves the client,
// the server and the script cache work together.

const PUSH_AND_COUNT = `
local count = redis.call('INCR', KEYS[1])
redis.call('RPUSH', KEYS[2], ARGV[1] .. ':' .. count)
return { count, redis.call('LLEN', KEYS[2]) }
`;

describe('ioredis round trip through a Lua script (real Redis)', () => {
  let redis: Redis;
  const prefix = `${uniqueName('lua')}:`;

  beforeAll(() => {
    redis = new Redis(testInfra().redisUrl, { keyPrefix: prefix });
    redis.defineCommand('pushAndCount', { numberOfKeys: 2, lua: PUSH_AND_COUNT });
  });

  afterAll(async () => {
    const keys = await redis.keys('*'); // keys() ignores keyPrefix for the pattern
    const own = keys.filter((key) => key.startsWith(prefix)).map((key) => key.slice(prefix.length));
    if (own.length) await redis.del(...own);
    await redis.quit();
  });

  it('runs atomically under concurrency and returns typed replies', async () => {
    const run = (value: string) =>
      (
        redis as Redis & {
          pushAndCount(a: string, b: string, v: string): Promise<[number, number]>;
        }
      ).pushAndCount('{u1}:counter', '{u1}:list', value);
    const replies = await Promise.all(Array.from({ length: 50 }, (_, i) => run(`v${i}`)));

    // Every call saw a consistent pair: its own increment equals the list length it produced.
    for (const [count, length] of replies) expect(count).toBe(length);
    expect(new Set(replies.map(([count]) => count)).size).toBe(50);
    expect(await redis.llen('{u1}:list')).toBe(50);
    // The script is cached on the server, so later calls go by EVALSHA.
    const [cached] = (await redis.script('EXISTS', await sha1(PUSH_AND_COUNT))) as number[];
    expect(cached).toBe(1);
    await eventually('keys written under the test prefix', async () =>
      (await redis.exists('{u1}:counter')) ? true : undefined,
    );
  });
});

async function sha1(text: string): Promise<string> {
  const { createHash } = await import('node:crypto');
  return createHash('sha1').update(text).digest('hex');
}
