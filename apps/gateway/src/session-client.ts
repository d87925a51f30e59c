import { decodeJwt } from 'jose';

export interface TokenPair {
  access_token: string;
  refresh_token: string;
  session_id?: string;
}

export interface AccessClaims {
  sub: string;
  sid: string;
  iat: number;
  exp: number;
  roles: string[];
}

/** An answer of the session service, status and JSON body (or undefined) as they came. */
export interface Upstream<T> {
  status: number;
  body: T | undefined;
  retryAfter: string | null;
}

/** The claims the gateway needs from an access JWT it just received from the session service. */
export function accessClaims(token: string): AccessClaims {
  const claims = decodeJwt(token);
  const { sub, iat, exp } = claims;
  const sid = claims.sid;
  if (
    typeof sub !== 'string' ||
    typeof sid !== 'string' ||
    typeof iat !== 'number' ||
    typeof exp !== 'number'
  )
    throw new Error('the session service answered an access token without sub, sid, iat or exp');
  const roles = Array.isArray(claims.roles)
    ? claims.roles.filter((role): role is string => typeof role === 'string')
    : [];
  return { sub, sid, iat, exp, roles };
}

/** The session service's token endpoints, as the token handler calls them. */
export class SessionClient {
  constructor(
    private readonly baseUrl: string,
    private readonly timeoutMs = 5_000,
  ) {}

  login(body: unknown): Promise<Upstream<TokenPair>> {
    return this.call('/auth/login', { body });
  }

  refresh(refreshToken: string): Promise<Upstream<TokenPair>> {
    return this.call('/auth/refresh', { body: { refresh_token: refreshToken } });
  }

  logout(accessToken: string): Promise<Upstream<unknown>> {
    return this.call('/auth/logout', { bearer: accessToken });
  }

  private async call<T>(
    path: string,
    { body, bearer }: { body?: unknown; bearer?: string },
  ): Promise<Upstream<T>> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (bearer !== undefined) headers.authorization = `Bearer ${bearer}`;
    const response = await fetch(new URL(path, this.baseUrl), {
      method: 'POST',
      headers,
      ...(body !== undefined && { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    const text = await response.text();
    let parsed: T | undefined;
    try {
      parsed = text === '' ? undefined : (JSON.parse(text) as T);
    } catch {
      parsed = undefined;
    }
    return {
      status: response.status,
      body: parsed,
      retryAfter: response.headers.get('retry-after'),
    };
  }
}
