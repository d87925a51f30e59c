// Requests the gateway specs make: at a gateway instance as a browser (the session cookie,
// x-csrf, Origin) or with a bearer token, and at the session service as a phone would.
import { createHash } from 'node:crypto';
import { request as httpRequest } from 'node:http';

export const ORIGIN = 'https://app.example';

export interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json: Record<string, unknown>;
}

const parse = (text: string): Record<string, unknown> => {
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    return {};
  }
};

export async function call(
  base: string,
  method: string,
  path: string,
  {
    cookie,
    bearer,
    body,
    headers: extra = {},
  }: { cookie?: string; bearer?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...extra };
  if (cookie !== undefined) {
    headers.cookie = `__Host-session=${cookie}`;
    headers['x-csrf'] = '1';
    headers.origin = ORIGIN;
  }
  if (bearer !== undefined) headers.authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${base}${path}`, {
    method,
    headers,
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, json: parse(text) };
}

/** A request exactly as written (headers, path), from a local address of choice. */
export function rawCall(
  base: string,
  {
    method = 'GET',
    path,
    headers = {},
    body,
    from,
  }: {
    method?: string;
    path: string;
    headers?: Record<string, string>;
    body?: string;
    from?: string;
  },
): Promise<{ status: number; headers: Record<string, unknown>; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      `${base}/`,
      {
        method,
        path,
        headers: {
          ...headers,
          ...(body !== undefined && { 'content-length': String(Buffer.byteLength(body)) }),
        },
        // A connection of its own: one the gateway closed after a 431 is never reused.
        agent: false,
        ...(from !== undefined && { localAddress: from }),
      },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => {
          resolve({ status: response.statusCode ?? 0, headers: response.headers, text });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Signs in through the gateway as a browser; the cookie's handle and the answer. */
export async function browserLogin(
  gateway: string,
  username: string,
  device: string,
): Promise<{ handle: string; sessionId: string }> {
  const answer = await call(gateway, 'POST', '/bff/login', {
    headers: { 'x-csrf': '1', origin: ORIGIN },
    body: { username, password: `${username}-pass`, device: { name: device } },
  });
  if (answer.status !== 200) throw new Error(`browser login: ${answer.status} ${answer.text}`);
  const line = answer.headers.getSetCookie().find((entry) => entry.startsWith('__Host-session='));
  const handle = line?.split(';')[0]?.slice('__Host-session='.length);
  if (!handle) throw new Error('no session cookie');
  return { handle, sessionId: String(answer.json.session_id) };
}

/** Signs in at the session service directly, as a phone or a third-party client. */
export async function phoneLogin(
  sessionUrl: string,
  username: string,
  device: string,
  tokenFormat: 'jwt' | 'opaque' = 'jwt',
): Promise<{ access_token: string; refresh_token: string; session_id: string }> {
  const answer = await call(sessionUrl, 'POST', '/auth/login', {
    body: {
      username,
      password: `${username}-pass`,
      device: { name: device },
      token_format: tokenFormat,
    },
  });
  if (answer.status !== 200) throw new Error(`phone login: ${answer.status} ${answer.text}`);
  return answer.json as { access_token: string; refresh_token: string; session_id: string };
}

/** Where a gateway keeps a cookie session's tokens in Redis. */
export const entryKey = (prefix: string, handle: string) =>
  `${prefix}bff:${createHash('sha256').update(handle).digest('hex')}`;

/** A counter of an app's /metrics, summed over the series whose labels contain `labels`. */
export async function metric(base: string, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .filter((line) => line.includes(labels))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}
