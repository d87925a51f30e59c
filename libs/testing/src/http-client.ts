/** A reply as the tests read it: status, the JSON body (or `{ text }`), headers. */
export interface Reply {
  status: number;
  body: Record<string, unknown>;
  headers: Headers;
}

/** One HTTP call with a JSON body and/or a bearer token; never hangs longer than 10 s. */
export async function call(
  baseUrl: string,
  method: string,
  path: string,
  { token, body }: { token?: string; body?: unknown } = {},
): Promise<Reply> {
  const headers: Record<string, string> = {};
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers,
    body: body === undefined ? null : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  return {
    status: response.status,
    body: parseBody(await response.text()),
    headers: response.headers,
  };
}

function parseBody(text: string): Record<string, unknown> {
  try {
    return text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    return { text };
  }
}
