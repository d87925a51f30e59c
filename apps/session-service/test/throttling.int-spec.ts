import { request } from 'node:http';
import { startSessionApp, type SessionApp } from './session-app';

// Guessing a password is throttled without locking the real user out, and behind a trusted
// proxy each client is counted by its own address, never by the proxy's, while a client that
// is not a trusted proxy cannot pick its address with X-Forwarded-For.

interface Answer {
  status: number;
  body: Record<string, unknown>;
  retryAfter: string | undefined;
}

describe('sign-in throttling and the trusted proxy (real Redis, real sockets)', () => {
  let app: SessionApp;
  let port: number;

  beforeAll(async () => {
    app = await startSessionApp({
      TRUST_PROXY: '127.0.0.1',
      RATE_LIMIT_PER_IP: '1000',
      RATE_LIMIT_CONSECUTIVE_FAILS: '5',
      RATE_LIMIT_FAILS_PER_IP: '1000',
      RATE_LIMIT_FAILS_PER_USERNAME: '1000',
    });
    port = Number(new URL(app.url).port);
  });

  afterAll(async () => {
    await app.close();
  });

  /** A sign-in over a socket bound to `from` (any 127.x address is this machine). */
  function signIn(
    username: string,
    password: string,
    { from = '127.0.0.1', forwardedFor }: { from?: string; forwardedFor?: string } = {},
  ): Promise<Answer> {
    const body = JSON.stringify({ username, password, device: { name: 'phone' } });
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          localAddress: from,
          method: 'POST',
          path: '/auth/login',
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            ...(forwardedFor ? { 'x-forwarded-for': forwardedFor } : {}),
          },
        },
        (response) => {
          let text = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => (text += chunk));
          response.on('end', () => {
            resolve({
              status: response.statusCode ?? 0,
              body: JSON.parse(text || '{}') as Record<string, unknown>,
              retryAfter: response.headers['retry-after'],
            });
          });
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  const guess = async (times: number, options: Parameters<typeof signIn>[2]) => {
    const statuses: number[] = [];
    for (let i = 0; i < times; i += 1)
      statuses.push((await signIn('bob', `guess-${i}`, options)).status);
    return statuses;
  };

  it('someone guessing bob’s password from one address is stopped; bob signs in from another', async () => {
    const statuses = await guess(20, { from: '127.0.0.2' });
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(statuses.slice(5).every((status) => status === 429)).toBe(true);
    // Even the right password is refused from the guessing address, for now.
    const attacker = await signIn('bob', 'bob-pass', { from: '127.0.0.2' });
    expect(attacker.status).toBe(429);
    expect(Number(attacker.retryAfter)).toBeGreaterThan(0);

    const bob = await signIn('bob', 'bob-pass', { from: '127.0.0.3' });
    expect(bob.status).toBe(200);
    // A typo or two from bob's own address does not lock him out either.
    expect((await signIn('bob', 'bob-pas', { from: '127.0.0.3' })).status).toBe(401);
    expect((await signIn('bob', 'bob-pass', { from: '127.0.0.3' })).status).toBe(200);
  });

  it('behind a trusted proxy, clients are told apart by X-Forwarded-For', async () => {
    const statuses = await guess(8, { forwardedFor: '203.0.113.5' });
    expect(statuses.slice(5)).toEqual([429, 429, 429]);
    // Another client through the same proxy is not affected.
    expect((await signIn('bob', 'bob-pass', { forwardedFor: '198.51.100.7' })).status).toBe(200);
  });

  it('from an address that is no trusted proxy, X-Forwarded-For is ignored', async () => {
    // 127.0.0.4 claims a new address on every guess: all count against 127.0.0.4 itself.
    const statuses: number[] = [];
    for (let i = 0; i < 8; i += 1)
      statuses.push(
        (await signIn('bob', `x-${i}`, { from: '127.0.0.4', forwardedFor: `192.0.2.${i}` })).status,
      );
    expect(statuses.slice(5)).toEqual([429, 429, 429]);
  });
});
