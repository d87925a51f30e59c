// GET /bff/events against the gateway as a process, in front of a real session service and
// publisher on the run's Kafka and Redis: an admin's cookie session follows, as Server-Sent
// Events, every revocation the gateway applies (a logout, an admin ending a session, a
// logout-all), with keep-alive comments; other callers are refused; the stream ends when the
// admin's own session is revoked and when the gateway shuts down.
import { eventually } from '@app/testing';
import type { AppHandle } from '../../../scripts/system.ts';
import { startGatewayFixture, type GatewayFixture } from './gateway-fixture';

const ORIGIN = 'https://console.example';

let fixture: GatewayFixture;
let gateway: AppHandle;
let sessionUrl: string;
const opened: EventStream[] = [];

interface Frame {
  id?: string;
  event?: string;
  data?: string;
  comments: string[];
}

/** A Server-Sent Events stream read as it comes, parsed into frames (blank-line separated). */
interface EventStream {
  status: number;
  headers: Headers;
  frames: Frame[];
  /** Resolves once the server ended the stream. */
  ended: Promise<void>;
  isEnded: () => boolean;
  close: () => Promise<void>;
}

function parseFrame(block: string): Frame {
  const frame: Frame = { comments: [] };
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) frame.comments.push(line.slice(1).trim());
    else {
      const at = line.indexOf(':');
      const field = at === -1 ? line : line.slice(0, at);
      const value = at === -1 ? '' : line.slice(at + 1).replace(/^ /, '');
      if (field === 'id' || field === 'event' || field === 'data') frame[field] = value;
    }
  }
  return frame;
}

async function openStream(
  cookie: string | undefined,
  /** null: no `Origin` header at all. */
  origin: string | null = ORIGIN,
  url = gateway.url,
): Promise<EventStream> {
  const headers: Record<string, string> = { accept: 'text/event-stream' };
  if (cookie !== undefined) headers.cookie = `__Host-session=${cookie}`;
  if (origin !== null) headers.origin = origin;
  const response = await fetch(`${url}/bff/events`, { headers });
  const frames: Frame[] = [];
  let done = false;
  const reader = response.body?.getReader();
  const decoder = new TextDecoder();
  const ended = (async () => {
    let buffer = '';
    try {
      for (;;) {
        const chunk = await reader?.read();
        if (chunk === undefined || chunk.done) break;
        buffer += decoder.decode(chunk.value as Uint8Array, { stream: true });
        let at: number;
        while ((at = buffer.indexOf('\n\n')) !== -1) {
          frames.push(parseFrame(buffer.slice(0, at)));
          buffer = buffer.slice(at + 2);
        }
      }
    } catch {
      // A stream cut off (rather than ended) counts as ended too.
    }
    done = true;
  })();
  const stream: EventStream = {
    status: response.status,
    headers: response.headers,
    frames,
    ended,
    isEnded: () => done,
    close: async () => {
      if (!done) await reader?.cancel().catch(() => undefined);
      await ended;
    },
  };
  opened.push(stream);
  return stream;
}

async function browserLogin(username: string): Promise<{ handle: string; sessionId: string }> {
  // Set-up, not what is tested: on a machine this busy the gateway's wait on the session
  // service's sign-in (a password hash) can run out, which it answers 503; then sign in again.
  const response = await eventually(`${username} to sign in through the gateway`, async () => {
    const answer = await fetch(`${gateway.url}/bff/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-csrf': '1', origin: ORIGIN },
      body: JSON.stringify({
        username,
        password: `${username}-pass`,
        device: { name: `browser-${username}` },
      }),
    });
    if (answer.status !== 503) return answer;
    await answer.arrayBuffer();
    return undefined;
  });
  expect(response.status).toBe(200);
  const line = response.headers.getSetCookie().find((entry) => entry.startsWith('__Host-session='));
  const handle = line?.split(';')[0]?.slice('__Host-session='.length);
  if (handle === undefined) throw new Error('no session cookie');
  const { session_id } = (await response.json()) as { session_id: string };
  return { handle, sessionId: session_id };
}

/** A session at the session service itself (another device): its access token and id. */
async function apiLogin(username: string): Promise<{ token: string; sessionId: string }> {
  const response = await fetch(`${sessionUrl}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      username,
      password: `${username}-pass`,
      device: { name: 'phone' },
    }),
  });
  expect(response.status).toBe(200);
  const body = (await response.json()) as { access_token: string; session_id: string };
  return { token: body.access_token, sessionId: body.session_id };
}

async function sessionCall(method: string, path: string, token: string): Promise<number> {
  const response = await fetch(`${sessionUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}` },
  });
  await response.arrayBuffer();
  return response.status;
}

interface Notice {
  jti: string;
  session_id?: string;
  user_id: string;
  initiating_entity: string;
  reason: string | null;
  at: string;
  applied_at: string;
  delay_ms: number;
  changed: boolean;
}

const notices = (stream: EventStream) =>
  stream.frames
    .filter((frame) => frame.event === 'revocation')
    .map((frame) => ({ id: frame.id ?? '', ...(JSON.parse(frame.data ?? '{}') as Notice) }));

/** The revocation notice on `stream` matching `match`, once it arrived. */
const noticeOf = (stream: EventStream, what: string, match: (notice: Notice) => boolean) =>
  eventually(
    `the event stream to show ${what}`,
    () => notices(stream).find((notice) => match(notice)),
    { timeoutMs: 30_000 },
  );

function expectTimes(notice: Notice): void {
  expect(Date.parse(notice.at)).not.toBeNaN();
  expect(Date.parse(notice.applied_at)).not.toBeNaN();
  expect(notice.delay_ms).toBeGreaterThanOrEqual(0);
  expect(notice.delay_ms).toBe(Date.parse(notice.applied_at) - Date.parse(notice.at));
}

beforeAll(async () => {
  fixture = await startGatewayFixture({
    name: 'gateway-events',
    gatewayEnv: { GATEWAY_ALLOWED_ORIGINS: ORIGIN, GATEWAY_EVENTS_KEEPALIVE_MS: '300' },
  });
  ({ gateway, sessionUrl } = fixture);
});

afterAll(async () => {
  await Promise.allSettled(opened.map((stream) => stream.close()));
  await fixture.stop();
});

describe('GET /bff/events (revocations for the admin console)', () => {
  it('refuses no cookie (401), a non-admin (403) and a foreign Origin (403)', async () => {
    const admin = await browserLogin('admin');
    const alice = await browserLogin('alice');
    const none = await openStream(undefined);
    const user = await openStream(alice.handle);
    const foreign = await openStream(admin.handle, 'https://evil.example');
    expect([none.status, user.status, foreign.status]).toEqual([401, 403, 403]);
    await Promise.all([none.ended, user.ended, foreign.ended]);
    expect(user.frames).toEqual([]);
    // Without Origin (not every client sends one) the admin gets the stream.
    const plain = await openStream(admin.handle, null);
    expect(plain.status).toBe(200);
    await plain.close();
  });

  it('streams each revocation the gateway applies, with keep-alive comments, to an admin', async () => {
    const admin = await browserLogin('admin');
    const stream = await openStream(admin.handle);
    expect(stream.status).toBe(200);
    expect(stream.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(stream.headers.get('cache-control')).toBe('no-store');
    expect(stream.headers.get('x-accel-buffering')).toBe('no');
    await eventually('a keep-alive comment', () =>
      stream.frames.some((frame) => frame.comments.includes('keep-alive')),
    );

    // A user logs out on another device.
    const phone = await apiLogin('alice');
    expect(await sessionCall('POST', '/auth/logout', phone.token)).toBe(204);
    const logout = await noticeOf(stream, 'the logout', (n) => n.session_id === phone.sessionId);
    expect(logout).toMatchObject({
      user_id: 'alice',
      initiating_entity: 'user',
      reason: 'user_logout',
      changed: true,
    });
    expectTimes(logout);

    // An admin ends one of bob's sessions, with a reason.
    const bobs = await apiLogin('bob');
    const adminApi = await apiLogin('admin');
    expect(
      await sessionCall(
        'DELETE',
        `/admin/sessions/${bobs.sessionId}?reason=lost%20laptop`,
        adminApi.token,
      ),
    ).toBe(204);
    const ended = await noticeOf(
      stream,
      'the admin ending it',
      (n) => n.session_id === bobs.sessionId,
    );
    expect(ended).toMatchObject({
      user_id: 'bob',
      initiating_entity: 'admin',
      reason: 'lost laptop',
    });
    expectTimes(ended);

    // Alice logs out everywhere: a user-wide event, no session.
    const laptop = await apiLogin('alice');
    expect(await sessionCall('POST', '/auth/logout-all', laptop.token)).toBe(204);
    const everywhere = await noticeOf(
      stream,
      'the logout-all',
      (n) => n.user_id === 'alice' && n.session_id === undefined,
    );
    expect(everywhere).toMatchObject({ initiating_entity: 'user', reason: 'logout_all' });
    expectTimes(everywhere);

    // Ids name the gateway instance and count up: a client can tell a gap.
    const ids = [logout, ended, everywhere].map((notice) => notice.id.split('-'));
    expect(new Set(ids.map(([instance]) => instance)).size).toBe(1);
    const sequence = ids.map(([, n]) => Number(n));
    expect(sequence).toEqual([...sequence].sort((a, b) => a - b));
    expect(stream.isEnded()).toBe(false);
    await stream.close();
  });

  it("ends the stream once the admin's own session is revoked", async () => {
    const admin = await browserLogin('admin');
    const stream = await openStream(admin.handle);
    expect(stream.status).toBe(200);
    const adminApi = await apiLogin('admin');
    expect(await sessionCall('DELETE', `/admin/sessions/${admin.sessionId}`, adminApi.token)).toBe(
      204,
    );
    await eventually('the stream to end', () => stream.isEnded(), { timeoutMs: 30_000 });
    expect(notices(stream).map((notice) => notice.session_id)).toContain(admin.sessionId);
    expect(stream.frames.at(-1)).toEqual({
      event: 'end',
      data: '{"reason":"session_ended"}',
      comments: [],
    });
    // And a new stream for that cookie is refused.
    expect((await openStream(admin.handle)).status).toBe(401);
  });

  it('ends every stream when the gateway shuts down, without waiting on them', async () => {
    const second = await fixture.system.startApp('gateway', { label: 'gateway-events-2' });
    const admin = await browserLogin('admin');
    const stream = await openStream(admin.handle, ORIGIN, second.url);
    expect(stream.status).toBe(200);
    // SIGTERM, and SIGKILL 10 s later: a shutdown that waited on the open stream ends so.
    await fixture.system.stopApp(second);
    expect((await second.exit).signal).not.toBe('SIGKILL');
    await stream.ended;
    expect(stream.frames.at(-1)).toEqual({
      event: 'end',
      data: '{"reason":"shutdown"}',
      comments: [],
    });
  });
});
