import { PhantomCache, phantomKey } from './phantom-cache';

describe('PhantomCache', () => {
  it('keys by SHA-256, never the token', () => {
    expect(phantomKey('at_secret.1')).toMatch(/^[0-9a-f]{64}$/);
    expect(phantomKey('at_secret.1')).not.toContain('secret');
  });

  it('drops the least recently used entry beyond its size', () => {
    const cache = new PhantomCache(2, () => 0);
    cache.set('a', 'jwt-a', 100);
    cache.set('b', 'jwt-b', 100);
    expect(cache.get('a')).toBe('jwt-a'); // a is now the most recent
    cache.set('c', 'jwt-c', 100);
    expect(cache.size).toBe(2);
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')).toBe('jwt-a');
    expect(cache.get('c')).toBe('jwt-c');
  });

  it('never serves an entry at or past its JWT exp, and a hit does not extend it', () => {
    let now = 0;
    const cache = new PhantomCache(10, () => now);
    cache.set('a', 'jwt-a', 10);
    now = 9_999;
    expect(cache.get('a')).toBe('jwt-a');
    now = 10_000;
    expect(cache.get('a')).toBeUndefined();
    expect(cache.size).toBe(0);
    cache.set('b', 'jwt-b', 5); // already expired: not kept
    expect(cache.size).toBe(0);
  });

  it('shares one exchange among concurrent misses', async () => {
    const cache = new PhantomCache(10);
    let calls = 0;
    const exchange = async () => {
      calls += 1;
      await new Promise((resolve) => setTimeout(resolve, 10));
      return 'jwt';
    };
    const answers = await Promise.all([1, 2, 3].map(() => cache.flight('k', exchange)));
    expect(answers).toEqual(['jwt', 'jwt', 'jwt']);
    expect(calls).toBe(1);
    await cache.flight('k', exchange);
    expect(calls).toBe(2); // a finished flight is not reused
  });
});
