import type { RevocationGuard } from '@app/revocation-guard';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { setTimeout as sleep } from 'node:timers/promises';
import type { GatewayEnv } from './config';
import type { CookieSessions } from './cookie-sessions';
import { phantomKey, type PhantomCache } from './phantom-cache';
import { badRequest, invalidSession, invalidToken, Refusal, unavailable } from './refusal';
import { accessClaims, type SessionClient } from './session-client';
import type { TokenStore } from './token-store';

export interface ProxyDeps {
  env: Pick<
    GatewayEnv,
    | 'GATEWAY_UPSTREAMS'
    | 'GATEWAY_CLIENT_ID'
    | 'GATEWAY_CLIENT_SECRET'
    | 'GATEWAY_TEST_HOLD_INTROSPECTION_MS'
  >;
  store: TokenStore;
  sessions: SessionClient;
  guard: RevocationGuard;
  cookies: CookieSessions;
  /** Opaque token (SHA-256) → access JWT, for the phantom-token flow. */
  phantom: PhantomCache;
  /** Counts the gateway's calls to `/oauth/introspect` (by outcome). */
  introspections: { inc(labels: { outcome: 'active' | 'inactive' | 'error' }): void };
}

/** `Authorization: Bearer <token>`: the token, or undefined when there is no bearer header. */
function bearerOf(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^\s*Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1] ?? '';
}

/** An opaque access token as the session service issues them (`at_<secret>.<shard>`). */
const OPAQUE = /^at_[A-Za-z0-9_.~+/=-]{1,512}$/;

/**
 * `ANY /api/<service>/…`: the request goes to one of that service's instances with an access
 * JWT, from the cookie session (which needs `x-csrf`) or from the bearer token (an opaque
 * one exchanged for its JWT), after the revocation view said the session is live.
 */
export function proxyRoutes(
  fastify: FastifyInstance,
  { env, store, sessions, guard, cookies, phantom, introspections }: ProxyDeps,
) {
  const upstreams = new Map(Object.entries(env.GATEWAY_UPSTREAMS));
  const nextInstance = new Map<string, number>();

  /** `/api/<service>/<rest>`: the upstream URL (rest still encoded), or a refusal. */
  const target = (rawUrl: string) => {
    const queryAt = rawUrl.indexOf('?');
    const path = queryAt === -1 ? rawUrl : rawUrl.slice(0, queryAt);
    const query = queryAt === -1 ? '' : rawUrl.slice(queryAt);
    const segments = path.split('/').slice(2); // '', 'api'
    for (const segment of segments) {
      let decoded: string;
      try {
        decoded = decodeURIComponent(segment);
      } catch {
        throw badRequest('malformed path');
      }
      if (decoded === '.' || decoded === '..' || /[/\\\0]/.test(decoded))
        throw badRequest('path traversal');
    }
    const [service = '', ...rest] = segments;
    const instances = upstreams.get(service);
    if (instances === undefined)
      throw new Refusal(404, { error: 'not_found', error_description: 'no such upstream' });
    const index = nextInstance.get(service) ?? 0;
    nextInstance.set(service, (index + 1) % instances.length);
    const base = (instances[index] ?? instances[0] ?? '').replace(/\/+$/, '');
    return `${base}/${rest.join('/')}${query}`;
  };

  /**
   * The phantom-token exchange for one opaque token, shared by concurrent misses: the JWT the
   * session service answers (undefined when the token is not active). Not cached here: the
   * caller re-checks the revocation view first (a revocation may have landed in flight).
   */
  const exchange = (key: string, token: string) =>
    phantom.flight(key, async () => {
      const secret = env.GATEWAY_CLIENT_SECRET;
      if (secret === undefined) throw unavailable('opaque tokens are not configured');
      let answer: Awaited<ReturnType<SessionClient['exchange']>>;
      try {
        answer = await sessions.exchange(token, { id: env.GATEWAY_CLIENT_ID, secret });
      } catch {
        introspections.inc({ outcome: 'error' });
        throw unavailable('could not exchange the token, retry shortly');
      }
      // 400: the session service refused the token's shape, so it is no token of ours.
      if (answer.status !== 200 && answer.status !== 400) {
        introspections.inc({ outcome: 'error' });
        throw unavailable('could not exchange the token, retry shortly');
      }
      introspections.inc({ outcome: answer.jwt === undefined ? 'inactive' : 'active' });
      // Test-only (refused in production): hold the answer, so a revocation can land meanwhile.
      if (env.GATEWAY_TEST_HOLD_INTROSPECTION_MS !== undefined)
        await sleep(env.GATEWAY_TEST_HOLD_INTROSPECTION_MS);
      return answer.jwt;
    });

  /**
   * A bearer request's JWT to forward, or a refusal. An opaque token is exchanged (cache, else
   * introspection); either way the revocation view is checked now, on every request, and after
   * an introspection returns, before its answer is cached or used (CVE-2026-3583).
   */
  const bearerJwt = async (token: string): Promise<string> => {
    if (!guard.ready) throw unavailable('revocation view not loaded yet, retry shortly');
    const opaque = token.startsWith('at_');
    let jwt = token;
    let key: string | undefined;
    let fromCache = false;
    if (opaque) {
      if (!OPAQUE.test(token)) throw invalidToken('malformed');
      key = phantomKey(token);
      const cached = phantom.get(key);
      fromCache = cached !== undefined;
      const exchanged = cached ?? (await exchange(key, token));
      if (exchanged === undefined) throw invalidToken('token not active');
      jwt = exchanged;
    }
    const outcome = await guard.decide(`Bearer ${jwt}`);
    if (!outcome.ok) {
      if (key !== undefined && outcome.status === 401) phantom.delete(key);
      throw new Refusal(outcome.status, {
        error: outcome.status === 401 ? 'invalid_token' : outcome.error,
        error_description: outcome.description,
      });
    }
    if (key !== undefined && !fromCache) phantom.set(key, jwt, accessClaims(jwt).exp);
    return jwt;
  };

  /** A cookie session's access JWT to forward (refreshed when due), or a refusal. */
  const cookieJwt = async (request: FastifyRequest): Promise<string> => {
    const live = await cookies.live(request);
    const session = await cookies.current(live.handle, live.session);
    const outcome = await guard.decide(`Bearer ${session.access_token}`);
    if (!outcome.ok) {
      if (outcome.status === 401) {
        await store.delete(live.handle);
        throw invalidSession(outcome.description);
      }
      throw new Refusal(outcome.status, {
        error: outcome.error,
        error_description: outcome.description,
      });
    }
    return session.access_token;
  };

  const forward = (reply: FastifyReply, url: string, jwt: string) =>
    reply.from(url, {
      rewriteRequestHeaders: (_original, headers) => {
        const forwarded = { ...headers };
        delete forwarded.cookie;
        delete forwarded['x-csrf'];
        delete forwarded.host;
        forwarded.authorization = `Bearer ${jwt}`;
        return forwarded;
      },
    });

  fastify.all('/api/*', async (request, reply) => {
    // A bearer token is no ambient credential (a page cannot make a browser attach one
    // cross-site): no x-csrf for it, and any cookie on the request is ignored.
    const bearer = bearerOf(request);
    if (bearer !== undefined) {
      if (bearer === '') throw invalidToken('malformed');
      const url = target(request.raw.url ?? request.url);
      return forward(reply, url, await bearerJwt(bearer));
    }
    cookies.checkCsrf(request);
    const url = target(request.raw.url ?? request.url);
    return forward(reply, url, await cookieJwt(request));
  });
}
