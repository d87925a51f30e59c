import type { FastifyRequest } from 'fastify';
import { decodeJwt } from 'jose';
import { unavailable } from './refusal';

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

/**
 * Who the gateway calls on behalf of: the browser's address (Fastify's `request.ip`, under the
 * gateway's own TRUST_PROXY), sent as `X-Forwarded-For` so the session service throttles and
 * records each client by its own address, not the gateway's (when its TRUST_PROXY trusts
 * the gateway), and the browser's User-Agent for the session's device record.
 */
export interface OnBehalfOf {
  ip: string;
  userAgent?: string | undefined;
}

export const onBehalfOf = (request: FastifyRequest): OnBehalfOf => ({
  ip: request.ip,
  userAgent: request.headers['user-agent'],
});

/** The session service's token endpoints, as the token handler calls them. */
export class SessionClient {
  constructor(
    private readonly baseUrl: string,
    private readonly timeoutMs = 15_000,
  ) {}

  login(body: unknown, client: OnBehalfOf): Promise<Upstream<TokenPair>> {
    return this.call('/auth/login', { body, client });
  }

  /** Sign-in with an OpenID provider's ID token (the code flow's, see oidc-login.ts). */
  loginWithIdToken(body: unknown, client: OnBehalfOf): Promise<Upstream<TokenPair>> {
    return this.call('/auth/oidc', { body, client });
  }

  refresh(refreshToken: string, client: OnBehalfOf): Promise<Upstream<TokenPair>> {
    return this.call('/auth/refresh', { body: { refresh_token: refreshToken }, client });
  }

  logout(accessToken: string, client: OnBehalfOf): Promise<Upstream<unknown>> {
    return this.call('/auth/logout', { bearer: accessToken, client });
  }

  /**
   * The phantom-token exchange: the access JWT an opaque `at_` token stands for, asked at
   * `/oauth/introspect` with `Accept: application/jwt` and the gateway's client credentials
   * (HTTP Basic). `jwt` is undefined when the token is not active; a status other than 200
   * (client refused, service failing) is the caller's to handle.
   */
  async exchange(
    token: string,
    client: { id: string; secret: string },
  ): Promise<{ status: number; jwt: string | undefined }> {
    const basic = Buffer.from(
      `${encodeURIComponent(client.id)}:${encodeURIComponent(client.secret)}`,
    ).toString('base64');
    const response = await fetch(new URL('/oauth/introspect', this.baseUrl), {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/jwt',
        authorization: `Basic ${basic}`,
      },
      body: JSON.stringify({ token }),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    const text = await response.text();
    const isJwt = (response.headers.get('content-type') ?? '')
      .toLowerCase()
      .startsWith('application/jwt');
    return { status: response.status, jwt: response.status === 200 && isJwt ? text : undefined };
  }

  private async call<T>(
    path: string,
    { body, bearer, client }: { body?: unknown; bearer?: string; client: OnBehalfOf },
  ): Promise<Upstream<T>> {
    const headers: Record<string, string> = { 'x-forwarded-for': client.ip };
    if (client.userAgent !== undefined) headers['user-agent'] = client.userAgent;
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (bearer !== undefined) headers.authorization = `Bearer ${bearer}`;
    let response: Response;
    let text: string;
    try {
      response = await fetch(new URL(path, this.baseUrl), {
        method: 'POST',
        headers,
        ...(body !== undefined && { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      text = await response.text();
    } catch {
      // Unreachable, or no answer in time (a sign-in under load): the caller may retry.
      throw unavailable('the session service did not answer, retry shortly');
    }
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
