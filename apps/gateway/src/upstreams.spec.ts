import { connectionFailed, timedOut, Upstreams } from './upstreams';

describe('Upstreams (round-robin with passive health)', () => {
  let now = 1_000_000;
  const clock = () => now;
  const bases = (list: { base: string }[]) => list.map((instance) => instance.base);

  it('starts each request at the next instance', () => {
    const upstreams = new Upstreams(
      { content: ['http://a/', 'http://b', 'http://c'] },
      5_000,
      clock,
    );
    expect([1, 2, 3, 4].map(() => bases(upstreams.order('content'))[0])).toEqual([
      'http://a',
      'http://b',
      'http://c',
      'http://a',
    ]);
    expect(bases(upstreams.order('content'))).toEqual(['http://b', 'http://c', 'http://a']);
    expect(upstreams.has('content')).toBe(true);
    expect(upstreams.has('nowhere')).toBe(false);
  });

  it('skips an instance that failed for the cool-off, then tries it again', () => {
    const upstreams = new Upstreams({ content: ['http://a', 'http://b'] }, 5_000, clock);
    const [a] = upstreams.order('content');
    upstreams.failed(a!);
    for (let i = 0; i < 4; i += 1)
      expect(bases(upstreams.order('content'))).toEqual(['http://b', 'http://a']);
    now += 5_000;
    expect(bases(upstreams.order('content')).sort()).toEqual(['http://a', 'http://b']);
    expect(new Set([1, 2].map(() => bases(upstreams.order('content'))[0]))).toEqual(
      new Set(['http://a', 'http://b']),
    );
  });

  it('tries every instance anyway when all are down, the least recently failed first', () => {
    const upstreams = new Upstreams({ content: ['http://a', 'http://b'] }, 5_000, clock);
    const [a, b] = upstreams.order('content');
    upstreams.failed(b!);
    now += 10;
    upstreams.failed(a!);
    expect(bases(upstreams.order('content'))).toEqual(['http://b', 'http://a']);
    upstreams.answered(a!);
    expect(bases(upstreams.order('content'))).toEqual(['http://a', 'http://b']);
  });

  it('tells a connection that failed from an answer or another error', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    expect(connectionFailed(Object.assign(new Error('x'), { cause: refused }))).toBe(true);
    expect(connectionFailed({ code: 'UND_ERR_SOCKET' })).toBe(true);
    expect(connectionFailed({ code: 'FST_REPLY_FROM_BAD_GATEWAY' })).toBe(false);
    expect(connectionFailed(new Error('other'))).toBe(false);
    expect(connectionFailed(undefined)).toBe(false);
    const slow = Object.assign(new Error('Gateway Timeout'), {
      code: 'FST_REPLY_FROM_GATEWAY_TIMEOUT',
      cause: { code: 'UND_ERR_HEADERS_TIMEOUT' },
    });
    expect(timedOut(slow)).toBe(true);
    expect(connectionFailed(slow)).toBe(false);
    expect(timedOut(refused)).toBe(false);
  });
});
