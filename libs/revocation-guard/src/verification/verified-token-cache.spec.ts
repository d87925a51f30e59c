import type { AccessTokenClaims } from '@app/contracts';
import { VerifiedTokenCache } from './verified-token-cache';

const T0 = Date.UTC(2026, 10, 29, 10, 0, 0);
const claims = (sid: string, expMs = T0 + 300_000): AccessTokenClaims => ({
  iss: 'i',
  sub: 'alice',
  aud: 'a',
  iat: Math.floor(T0 / 1000),
  exp: Math.floor(expMs / 1000),
  jti: `j-${sid}`,
  sid,
});

function setup(maxEntries: number) {
  let now = T0;
  const cache = new VerifiedTokenCache({ maxEntries, now: () => now });
  return { cache, advance: (ms: number) => (now += ms) };
}

describe('VerifiedTokenCache', () => {
  it('never holds more than its bound, dropping the least recently used first', () => {
    const { cache } = setup(3);
    for (const token of ['t1', 't2', 't3']) cache.set(token, claims(token));
    expect(cache.get('t1')?.sid).toBe('t1'); // t1 is now the most recently used; t2 the least
    cache.set('t4', claims('t4'));
    expect(cache.size).toBe(3);
    expect(cache.get('t2')).toBeUndefined();
    expect(['t1', 't3', 't4'].map((token) => cache.get(token)?.sid)).toEqual(['t1', 't3', 't4']);
    for (let i = 0; i < 1_000; i += 1) cache.set(`x${i}`, claims(`x${i}`));
    expect(cache.size).toBe(3);
  });

  it('keeps a token in steady use while others churn through', () => {
    const { cache } = setup(100);
    cache.set('hot', claims('hot'));
    for (let i = 0; i < 10_000; i += 1) {
      cache.set(`cold${i}`, claims(`cold${i}`));
      expect(cache.get('hot')?.sid).toBe('hot');
    }
    expect(cache.size).toBe(100);
  });

  it('drops an entry at its exp: the token is verified anew (and then refused as expired)', () => {
    const { cache, advance } = setup(10);
    cache.set('t1', claims('t1', T0 + 60_000));
    advance(59_999);
    expect(cache.get('t1')?.sid).toBe('t1');
    advance(1);
    expect(cache.get('t1')).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('keys by the whole token: a token differing in one byte is not a hit', () => {
    const { cache } = setup(10);
    cache.set('header.payload.signature', claims('t1'));
    expect(cache.get('header.payload.signaturf')).toBeUndefined();
    expect(cache.get('header.payloae.signature')).toBeUndefined();
  });

  it('with a bound of 0 remembers nothing', () => {
    const { cache } = setup(0);
    cache.set('t1', claims('t1'));
    expect(cache.get('t1')).toBeUndefined();
    expect(cache.size).toBe(0);
  });
});
