// Bad input at the gateway (a process in front of a real session service and content-api,
// with an upstream recorder): malformed cookies, forged or tampered handles and oversized
// headers get a clear 4xx, never a 5xx, and never reach an upstream. Also what the gateway
// adds to its answers and calls: its own security headers (helmet) without rewriting an
// upstream's, and the browser's address as X-Forwarded-For, which the session service
// throttles sign-ins by.
import type { IncomingHttpHeaders } from 'node:http';
import type { AppHandle } from '../../../scripts/system.ts';
import { browserLogin, call, ORIGIN, rawCall } from './gateway-calls';
import { startGatewayFixture, type GatewayFixture } from './gateway-fixture';

/** Sign-ins the session service allows per client address and window (60 s). */
const PER_IP = 6;

let fixture: GatewayFixture;
let gateway: AppHandle;
let received: { url: string; headers: IncomingHttpHeaders }[];

beforeAll(async () => {
  fixture = await startGatewayFixture({
    name: 'gateway-bad-input',
    // The session service trusts the gateway (on loopback) to say who the client is.
    sessionEnv: { TRUST_PROXY: '127.0.0.1', RATE_LIMIT_PER_IP: String(PER_IP) },
    gatewayEnv: { GATEWAY_ALLOWED_ORIGINS: ORIGIN, GATEWAY_UPSTREAM_TIMEOUT_MS: '1000' },
  });
  ({ gateway, received } = fixture);
}, 120_000);

afterAll(async () => {
  await fixture.stop();
});

const proxied = (cookieHeader: string, extra: Record<string, string> = {}) =>
  rawCall(gateway.url, {
    path: '/api/recorder/x',
    headers: { cookie: cookieHeader, 'x-csrf': '1', origin: ORIGIN, ...extra },
  });

describe('gateway: bad input gets a clear 4xx, never a 5xx, never an upstream call', () => {
  it('refuses malformed cookies with 401', async () => {
    const before = received.length;
    const statuses: Record<string, number> = {};
    const cookies: Record<string, string> = {
      empty: '__Host-session=',
      short: '__Host-session=abc',
      tooLong: `__Host-session=${'A'.repeat(2_000)}`,
      badChars: `__Host-session=${'!'.repeat(43)}`,
      quoted: `__Host-session="${'A'.repeat(43)}"`,
      badEscape: '__Host-session=%zz%',
      noValue: '__Host-session',
      otherName: `session=${'A'.repeat(43)}`,
      garbage: ';;;=;=',
    };
    for (const [name, header] of Object.entries(cookies))
      statuses[name] = (await proxied(header)).status;
    expect(statuses).toEqual(Object.fromEntries(Object.keys(cookies).map((name) => [name, 401])));
    expect((await call(gateway.url, 'GET', '/bff/session', { cookie: '%zz' })).status).toBe(401);
    expect(received.length).toBe(before);
  });

  it('refuses forged and tampered handles with 401', async () => {
    const { handle } = await browserLogin(gateway.url, 'alice', 'browser-tampered');
    expect((await proxied(`__Host-session=${handle}`)).status).toBe(200);
    const before = received.length;
    const last = handle.at(-1) === 'A' ? 'B' : 'A';
    const forged = {
      random: 'Q'.repeat(43),
      tampered: `${handle.slice(0, -1)}${last}`,
      truncated: handle.slice(0, -1),
      extended: `${handle}A`,
      twoCookies: `${'Q'.repeat(43)}; __Host-session=${'R'.repeat(43)}`,
    };
    const statuses: Record<string, number> = {};
    for (const [name, value] of Object.entries(forged))
      statuses[name] = (await proxied(`__Host-session=${value}`)).status;
    expect(statuses).toEqual({
      random: 401,
      tampered: 401,
      truncated: 401,
      extended: 401,
      twoCookies: 401,
    });
    expect(received.length).toBe(before);
    // The real session was not disturbed by the forgeries.
    expect((await proxied(`__Host-session=${handle}`)).status).toBe(200);
  });

  it('refuses oversized headers with 431, with no upstream call', async () => {
    const { handle } = await browserLogin(gateway.url, 'alice', 'browser-oversized');
    const before = received.length;
    const big = 'A'.repeat(20 * 1024);
    const answers = [
      await proxied(`__Host-session=${handle}; pad=${big}`),
      await proxied(`__Host-session=${handle}`, { 'x-pad': big }),
      await rawCall(gateway.url, {
        path: '/api/recorder/x',
        headers: { authorization: `Bearer at_${big}` },
      }),
      await rawCall(gateway.url, { path: `/api/recorder/${big}`, headers: {} }),
    ];
    for (const answer of answers) {
      expect(answer.status).toBeGreaterThanOrEqual(400);
      expect(answer.status).toBeLessThan(500);
    }
    expect(answers.slice(0, 3).map((answer) => answer.status)).toEqual([431, 431, 431]);
    expect(received.length).toBe(before);
  });
});

describe('gateway: an upstream that never answers', () => {
  it('answers 504 gateway_timeout, never hangs, and never sends the request again', async () => {
    const { handle } = await browserLogin(gateway.url, 'alice', 'browser-hang');
    const hung = () => received.filter((entry) => entry.url.startsWith('hang:')).length;
    for (const method of ['GET', 'POST']) {
      const before = hung();
      const answer = await call(gateway.url, method, '/api/hang/x', {
        cookie: handle,
        ...(method === 'POST' && { body: { n: 1 } }),
      });
      expect(answer.status).toBe(504);
      expect(answer.json).toMatchObject({ error: 'gateway_timeout' });
      expect(hung() - before).toBe(1);
    }
  });
});

describe('gateway: what it adds', () => {
  it('answers with its own security headers (helmet) and passes an upstream’s own on', async () => {
    const own = await call(gateway.url, 'GET', '/bff/session');
    expect(own.status).toBe(401);
    expect(own.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(own.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(own.headers.get('content-security-policy')).not.toContain('unsafe-inline');
    expect(own.headers.get('x-frame-options')).toBe('DENY');
    expect(own.headers.get('x-content-type-options')).toBe('nosniff');
    expect(own.headers.get('strict-transport-security')).toMatch(/max-age=\d+/);

    const { handle } = await browserLogin(gateway.url, 'alice', 'browser-headers');
    const upstream = await call(gateway.url, 'GET', '/api/content/me', { cookie: handle });
    expect(upstream.status).toBe(200);
    // content-api's own policy (JSON for programs), as it sent it.
    expect(upstream.headers.get('content-security-policy')).toBe(
      "default-src 'none'; frame-ancestors 'none'",
    );
  });

  it('sends the browser’s address on: sign-ins through the gateway are throttled per browser, not all as one', async () => {
    const signIn = (from: string) =>
      rawCall(gateway.url, {
        method: 'POST',
        path: '/bff/login',
        from,
        headers: { 'content-type': 'application/json', 'x-csrf': '1', origin: ORIGIN },
        body: JSON.stringify({ username: 'bob', password: 'bob-pass', device: { name: from } }),
      });
    const first: number[] = [];
    for (let i = 0; i <= PER_IP; i += 1) first.push((await signIn('127.0.0.2')).status);
    expect(first).toEqual([...Array<number>(PER_IP).fill(200), 429]);
    // Another browser has its own allowance: the gateway did not make them one client.
    expect((await signIn('127.0.0.3')).status).toBe(200);

    const before = received.length;
    expect((await proxied(`__Host-session=${'Q'.repeat(43)}`)).status).toBe(401);
    const { handle } = await browserLogin(gateway.url, 'alice', 'browser-xff');
    const spoofed = await rawCall(gateway.url, {
      path: '/api/recorder/xff',
      from: '127.0.0.4',
      headers: {
        cookie: `__Host-session=${handle}`,
        'x-csrf': '1',
        origin: ORIGIN,
        'x-forwarded-for': '203.0.113.9',
        forwarded: 'for=203.0.113.9',
      },
    });
    expect(spoofed.status).toBe(200);
    expect(received.length).toBe(before + 1);
    // The gateway trusts no proxy here: the upstream learns the peer, not what it claimed.
    expect(received.at(-1)?.headers['x-forwarded-for']).toBe('127.0.0.4');
    expect(received.at(-1)?.headers.forwarded).toBeUndefined();
  });
});
