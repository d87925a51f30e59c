// The gateway as a process in front of a real session service, publisher and content-api on
// the run's Kafka and Redis: the token handler's cookie, CSRF and Origin rules, the proxy
// (an upstream recorder sees what the gateway forwards), and a revocation from another device
// refusing the cookie session at the gateway (invariants 8 and 9 of DESIGN.md).
import { eventually } from '@app/testing';
import type { Redis } from 'ioredis';
import { createHash } from 'node:crypto';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { AppHandle } from '../../../scripts/system.ts';
import { startGatewayFixture, type GatewayFixture } from './gateway-fixture';

const ORIGIN = 'https://app.example';
const ACCESS_TOKEN_TTL_SECONDS = 8;
const REFRESH_AHEAD_SECONDS = 5;

let fixture: GatewayFixture;
let gateway: AppHandle;
let sessionUrl: string;
let redis: Redis;
let gatewayPrefix: string;
let received: { url: string; headers: IncomingHttpHeaders }[];

interface Answer {
  status: number;
  headers: Headers;
  text: string;
}

async function call(
  method: string,
  path: string,
  {
    cookie,
    csrf = true,
    origin,
    body,
  }: { cookie?: string; csrf?: boolean; origin?: string; body?: unknown } = {},
): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (cookie !== undefined) headers.cookie = `__Host-session=${cookie}`;
  if (csrf) headers['x-csrf'] = '1';
  if (origin !== undefined) headers.origin = origin;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${gateway.url}${path}`, {
    method,
    headers,
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

/** A request whose path goes out exactly as written (fetch would resolve `..` first). */
function rawGet(path: string, cookie: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      `${gateway.url}/`,
      { path, headers: { cookie: `__Host-session=${cookie}`, 'x-csrf': '1' } },
      (response) => {
        response.resume();
        response.on('end', () => {
          resolve(response.statusCode ?? 0);
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** The attributes of the session cookie the answer sets, or undefined when it sets none. */
function sessionCookie(answer: Answer): { value: string; attributes: string[] } | undefined {
  const line = answer.headers.getSetCookie().find((entry) => entry.startsWith('__Host-session='));
  if (line === undefined) return undefined;
  const [pair = '', ...attributes] = line.split(';').map((part) => part.trim());
  return { value: pair.slice('__Host-session='.length), attributes: attributes.sort() };
}

const INVARIANT_9 = ['HttpOnly', 'Path=/', 'SameSite=Strict', 'Secure'];

const entryKey = (handle: string) =>
  `${gatewayPrefix}bff:${createHash('sha256').update(handle).digest('hex')}`;

async function browserLogin(
  device: string,
  remember = false,
): Promise<{ handle: string; answer: Answer }> {
  const answer = await call('POST', '/bff/login', {
    origin: ORIGIN,
    body: {
      username: 'alice',
      password: 'alice-pass',
      device: { name: device },
      ...(remember && { remember }),
    },
  });
  expect(answer.status).toBe(200);
  const cookie = sessionCookie(answer);
  if (cookie === undefined) throw new Error('no session cookie');
  return { handle: cookie.value, answer };
}

async function refreshesSoFar(): Promise<number> {
  const text = await (await fetch(`${sessionUrl}/metrics`)).text();
  const line = text.split('\n').find((entry) => entry.startsWith('session_refreshes_total'));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** Every header and the body of an answer, as one text to search for tokens. */
const everything = (answer: Answer) => `${JSON.stringify([...answer.headers])}\n${answer.text}`;

beforeAll(async () => {
  fixture = await startGatewayFixture({
    name: 'gateway',
    // Short-lived access tokens, so that a test can cross an expiry.
    sessionEnv: { ACCESS_TOKEN_TTL_SECONDS: String(ACCESS_TOKEN_TTL_SECONDS) },
    gatewayEnv: {
      GATEWAY_ALLOWED_ORIGINS: ORIGIN,
      GATEWAY_REFRESH_AHEAD_SECONDS: String(REFRESH_AHEAD_SECONDS),
    },
  });
  ({ gateway, sessionUrl, redis, gatewayPrefix, received } = fixture);
});

afterAll(async () => {
  await fixture.stop();
});

describe('gateway (token handler, CSRF, proxy, revocation)', () => {
  it('sets the session cookie exactly as invariant 9 and never lets a token reach the browser', async () => {
    const { handle, answer } = await browserLogin('browser');
    expect(sessionCookie(answer)?.attributes).toEqual(INVARIANT_9);
    expect(handle).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const body = JSON.parse(answer.text) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(['csrf_token', 'session_id', 'user']);
    expect(body.user).toEqual({ sub: 'alice', roles: expect.any(Array) as unknown });

    // The tokens are in Redis under the handle's hash only, never in what the browser sees.
    const stored = JSON.parse((await redis.get(entryKey(handle))) ?? '{}') as Record<
      string,
      string
    >;
    expect(stored.access_token).toMatch(/^ey/);
    expect(stored.refresh_token).toBeTruthy();
    expect(await redis.exists(`${gatewayPrefix}bff:${handle}`)).toBe(0);
    const session = await call('GET', '/bff/session', { cookie: handle });
    expect(session.status).toBe(200);
    expect(JSON.parse(session.text)).toEqual({
      user: body.user,
      session_id: body.session_id,
      expires_at: expect.any(String) as unknown,
      csrf_token: body.csrf_token,
    });
    for (const seen of [answer, session]) {
      expect(everything(seen)).not.toContain(stored.access_token);
      expect(everything(seen)).not.toContain(stored.refresh_token);
    }
    // The entry lives as long as the session may (12 h by default), no longer.
    const ttl = await redis.pttl(entryKey(handle));
    expect(ttl).toBeGreaterThan(11 * 3600_000);
    expect(ttl).toBeLessThanOrEqual(12 * 3600_000);

    // `remember` makes it a persistent cookie; otherwise it has neither Max-Age nor Expires.
    const remembered = await browserLogin('browser-remember', true);
    expect(sessionCookie(remembered.answer)?.attributes).toEqual(
      [...INVARIANT_9, `Max-Age=${30 * 24 * 3600}`].sort(),
    );
  });

  it('refuses /api without x-csrf, and a foreign Origin, with 403', async () => {
    const { handle } = await browserLogin('browser-csrf');
    const before = received.length;
    expect((await call('GET', '/api/recorder/x', { cookie: handle, csrf: false })).status).toBe(
      403,
    );
    expect(
      (await call('GET', '/api/recorder/x', { cookie: handle, origin: 'https://evil.example' }))
        .status,
    ).toBe(403);
    expect(
      (await call('POST', '/bff/logout', { cookie: handle, origin: 'https://evil.example' }))
        .status,
    ).toBe(403);
    expect((await call('POST', '/bff/logout', { cookie: handle, csrf: false })).status).toBe(403);
    expect(
      (
        await call('POST', '/bff/login', {
          origin: 'https://evil.example',
          body: { username: 'alice', password: 'alice-pass', device: { name: 'x' } },
        })
      ).status,
    ).toBe(403);
    expect(received.length).toBe(before);
    // The session survived the refused logouts.
    expect((await call('GET', '/api/recorder/x', { cookie: handle, origin: ORIGIN })).status).toBe(
      200,
    );
  });

  it('proxies /api/<service>/… with the access JWT and without the browser’s Cookie', async () => {
    const { handle, answer } = await browserLogin('browser-proxy');
    const { session_id } = JSON.parse(answer.text) as { session_id: string };
    const me = await call('GET', '/api/content/me', { cookie: handle });
    expect(me.status).toBe(200);
    expect(JSON.parse(me.text)).toMatchObject({ sub: 'alice', session_id });

    const before = received.length;
    const recorded = await call('POST', '/api/recorder/orders/7?expand=1', {
      cookie: handle,
      origin: ORIGIN,
      body: { n: 1 },
    });
    expect(recorded.status).toBe(200);
    expect(received.length).toBe(before + 1);
    const [seen] = received.slice(-1);
    expect(seen?.url).toBe('/orders/7?expand=1');
    expect(seen?.headers.cookie).toBeUndefined();
    expect(seen?.headers['x-csrf']).toBeUndefined();
    const stored = JSON.parse((await redis.get(entryKey(handle))) ?? '{}') as {
      access_token: string;
    };
    expect(seen?.headers.authorization).toBe(`Bearer ${stored.access_token}`);
  });

  it('answers 404 for an unknown upstream and 400 for path traversal, with no upstream call, never 5xx', async () => {
    const { handle } = await browserLogin('browser-paths');
    const before = received.length;
    const answers = {
      unknown: await rawGet('/api/nowhere/me', handle),
      dotdot: await rawGet('/api/recorder/../content/me', handle),
      encoded: await rawGet('/api/recorder/%2e%2e/content/me', handle),
      encodedSlash: await rawGet('/api/recorder/a%2f..%2fb', handle),
      serviceDotdot: await rawGet('/api/%2E%2E/recorder/x', handle),
      badEscape: await rawGet('/api/recorder/%zz', handle),
      badCookie: await rawGet('/api/recorder/x', 'not-a-handle'),
      unknownCookie: await rawGet('/api/recorder/x', 'A'.repeat(43)),
    };
    expect(answers).toEqual({
      unknown: 404,
      dotdot: 400,
      encoded: 400,
      encodedSlash: 400,
      serviceDotdot: 400,
      badEscape: 400,
      badCookie: 401,
      unknownCookie: 401,
    });
    expect(received.length).toBe(before);
  });

  it('refuses the cookie session at the gateway once the user logged out everywhere from a phone', async () => {
    const { handle } = await browserLogin('browser-revoked');
    expect((await call('GET', '/api/content/me', { cookie: handle })).status).toBe(200);

    const phone = await fetch(`${sessionUrl}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        username: 'alice',
        password: 'alice-pass',
        device: { name: 'phone' },
      }),
    });
    const { access_token } = (await phone.json()) as { access_token: string };
    const everywhere = await fetch(`${sessionUrl}/auth/logout-all`, {
      method: 'POST',
      headers: { authorization: `Bearer ${access_token}` },
    });
    expect(everywhere.status).toBe(204);

    const refused = await eventually('the gateway to refuse the cookie session', async () => {
      const answer = await call('GET', '/api/content/me', { cookie: handle });
      return answer.status === 401 ? answer : undefined;
    });
    expect(sessionCookie(refused)).toEqual({
      value: '',
      attributes: expect.arrayContaining(['Max-Age=0']) as unknown,
    });
    expect(await redis.exists(entryKey(handle))).toBe(0);
    const session = await call('GET', '/bff/session', { cookie: handle });
    expect(session.status).toBe(401);
    expect(sessionCookie(session)?.value).toBe('');
  });

  it('passes an upstream’s 401 through, cookie kept, while the session service holds the session', async () => {
    const { handle } = await browserLogin('browser-upstream-401');
    const refused = await call('GET', '/api/recorder/unauthorized', { cookie: handle });
    expect(refused.status).toBe(401);
    expect(JSON.parse(refused.text)).toMatchObject({
      error_description: 'refused by the recorder',
    });
    expect(sessionCookie(refused)).toBeUndefined();
    expect(await redis.exists(entryKey(handle))).toBe(1);
    expect((await call('GET', '/api/recorder/after-401', { cookie: handle })).status).toBe(200);
  });

  it('clears the cookie on an upstream’s 401 for a session ended before the gateway’s view heard of it', async () => {
    // No publisher: the logout's event stays in the outbox, so no view (the gateway's, the
    // APIs') hears of it; the upstream's 401 is the gateway's first news, as when an API's view
    // is ahead of the gateway's.
    const publisher = fixture.system.app('revocation-publisher');
    await fixture.system.stopApp(publisher);
    try {
      const { handle } = await browserLogin('browser-upstream-first');
      const phone = await fetch(`${sessionUrl}/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'alice', password: 'alice-pass', device: { name: 'p2' } }),
      });
      const { access_token } = (await phone.json()) as { access_token: string };
      const everywhere = await fetch(`${sessionUrl}/auth/logout-all`, {
        method: 'POST',
        headers: { authorization: `Bearer ${access_token}` },
      });
      expect(everywhere.status).toBe(204);

      const seen = received.length;
      const refused = await call('GET', '/api/recorder/unauthorized', { cookie: handle });
      expect(received.slice(seen).map((r) => r.url)).toEqual(['/unauthorized']);
      expect(refused.status).toBe(401);
      expect(JSON.parse(refused.text)).toMatchObject({ error: 'invalid_token' });
      expect(sessionCookie(refused)).toEqual({
        value: '',
        attributes: expect.arrayContaining(['Max-Age=0']) as unknown,
      });
      expect(await redis.exists(entryKey(handle))).toBe(0);
    } finally {
      await fixture.system.restartApp(publisher);
    }
  });

  it('logs out: the session ends at the session service, the entry and the cookie go', async () => {
    const { handle } = await browserLogin('browser-logout');
    const stored = JSON.parse((await redis.get(entryKey(handle))) ?? '{}') as {
      refresh_token: string;
    };
    const out = await call('POST', '/bff/logout', { cookie: handle, origin: ORIGIN });
    expect(out.status).toBe(204);
    expect(sessionCookie(out)?.value).toBe('');
    expect(await redis.exists(entryKey(handle))).toBe(0);
    expect((await call('GET', '/bff/session', { cookie: handle })).status).toBe(401);
    // The session service ended the session: its refresh token is refused.
    const refresh = await fetch(`${sessionUrl}/auth/refresh`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ refresh_token: stored.refresh_token }),
    });
    expect(refresh.status).toBe(401);
  });

  it('refreshes an access token about to expire once, however many requests race across its expiry', async () => {
    const { handle } = await browserLogin('browser-refresh');
    const before = JSON.parse((await redis.get(entryKey(handle))) ?? '{}') as {
      access_token: string;
      refresh_token: string;
      exp: number;
    };
    // Deep in the refresh window (REFRESH_AHEAD_SECONDS before exp), a second before the token
    // expires: the new token (ACCESS_TOKEN_TTL_SECONDS) is then not due for 3 s, longer than
    // the waves below last, so a second refresh would be a lost single flight, not a due one.
    const due = before.exp * 1000 - 1_000;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - Date.now())));
    const refreshes = await refreshesSoFar();
    // 50 requests in 10 waves from then until past the old token's exp: the first ones race
    // into one refresh, the later ones find it done or join it.
    const span = before.exp * 1000 + 500 - Date.now();
    const answers = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        await new Promise((resolve) => setTimeout(resolve, Math.floor(i / 5) * (span / 10)));
        return call('GET', '/api/content/me', { cookie: handle });
      }),
    );
    expect(answers.map((answer) => answer.status)).toEqual(Array(50).fill(200));
    expect((await refreshesSoFar()) - refreshes).toBe(1);
    const after = JSON.parse((await redis.get(entryKey(handle))) ?? '{}') as typeof before;
    expect(after.access_token).not.toBe(before.access_token);
    expect(after.refresh_token).not.toBe(before.refresh_token);
    expect(after.exp).toBeGreaterThan(before.exp);
    // Past the old token's exp, the session goes on with the new one.
    await new Promise((resolve) =>
      setTimeout(resolve, Math.max(0, before.exp * 1000 + 1_000 - Date.now())),
    );
    expect((await call('GET', '/api/content/me', { cookie: handle })).status).toBe(200);
  }, 30_000);
});
