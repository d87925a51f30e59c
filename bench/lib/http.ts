// HTTP for measuring: node:http over kept-alive connections, so a poll costs one request on an
// open socket (no connection set-up, none of fetch's stream machinery in the measured path).
import http, { type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';

const TIMEOUT_MS = 10_000;

export interface RequestOptions {
  method?: string;
  headers?: OutgoingHttpHeaders;
  body?: unknown;
  agent?: http.Agent | undefined;
}

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

/** One request; resolves with the status, the headers and the body as text. */
export function request(
  url: string,
  { method = 'GET', headers = {}, body, agent }: RequestOptions = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      url,
      {
        method,
        agent,
        timeout: TIMEOUT_MS,
        headers: payload
          ? { ...headers, 'content-type': 'application/json', 'content-length': payload.length }
          : headers,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text: Buffer.concat(chunks).toString('utf8'),
          });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () =>
      req.destroy(new Error(`${method} ${url}: no answer in ${TIMEOUT_MS} ms`)),
    );
    req.on('error', reject);
    req.end(payload);
  });
}

export const post = (url: string, body?: unknown, options: RequestOptions = {}): Promise<Reply> =>
  request(url, { ...options, method: 'POST', body });

/** A connection pool of its own: `sockets` kept-alive connections, reused most recent first. */
export function keepAliveAgent(sockets = 1): http.Agent {
  return new http.Agent({ keepAlive: true, maxSockets: sockets, scheduling: 'lifo' });
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** What the session service answers a sign-in or a refresh with. */
export interface TokenReply {
  access_token: string;
  refresh_token: string;
  session_id: string;
}

/**
 * A POST with fetch, as the session benchmarks send theirs: a JSON body and a bearer token,
 * each when given; resolves with the status and, when `json` and 2xx, the parsed reply.
 */
export async function fetchPost(
  url: string,
  options: { body?: unknown; token?: string; json?: boolean; timeoutMs?: number },
): Promise<{ status: number; body?: TokenReply }> {
  const { body, token, json = false, timeoutMs = 30_000 } = options;
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      ...(body !== undefined && { 'content-type': 'application/json' }),
      ...(token !== undefined && { authorization: `Bearer ${token}` }),
    },
    body: body === undefined ? null : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (json && response.ok)
    return { status: response.status, body: (await response.json()) as TokenReply };
  await response.arrayBuffer();
  return { status: response.status };
}
