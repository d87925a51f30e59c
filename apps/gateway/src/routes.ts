import fastifyCookie from '@fastify/cookie';
import replyFrom from '@fastify/reply-from';
import type { RevocationGuard } from '@app/revocation-guard';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import type { GatewayEnv } from './config';
import { phantomKey, type PhantomCache } from './phantom-cache';
import { accessClaims, type SessionClient, type TokenPair } from './session-client';
import { newHandle, TokenStore, type CookieSession } from './token-store';

export const COOKIE = '__Host-session';

export interface GatewayDeps {
  env: Pick<
    GatewayEnv,
    | 'GATEWAY_UPSTREAMS'
    | 'GATEWAY_ALLOWED_ORIGINS'
    | 'GATEWAY_SESSION_TTL_SECONDS'
    | 'GATEWAY_REMEMBER_TTL_SECONDS'
    | 'GATEWAY_REFRESH_AHEAD_SECONDS'
    | 'GATEWAY_CLIENT_ID'
    | 'GATEWAY_CLIENT_SECRET'
    | 'GATEWAY_TEST_HOLD_INTROSPECTION_MS'
  >;
  store: TokenStore;
  sessions: SessionClient;
  guard: RevocationGuard;
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

const loginBody = z.strictObject({
  username: z.string().min(1).max(200),
  password: z.string().min(1).max(1_000),
  device: z.strictObject({
    name: z.string().min(1).max(200),
    platform: z.string().min(1).max(100).optional(),
  }),
  remember: z.boolean().optional(),
});

class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly body: { error: string; error_description: string },
    readonly clearCookie = false,
  ) {
    super(body.error_description);
  }
}

const invalidSession = (description: string) =>
  new Refusal(401, { error: 'invalid_token', error_description: description }, true);

/** The token handler (/bff/*) and the proxy (/api/<service>/…), as one Fastify plugin. */
export function gatewayRoutes({
  env,
  store,
  sessions,
  guard,
  phantom,
  introspections,
}: GatewayDeps) {
  const allowedOrigins = new Set(
    env.GATEWAY_ALLOWED_ORIGINS.map((origin) => new URL(origin).origin),
  );
  const upstreams = new Map(Object.entries(env.GATEWAY_UPSTREAMS));
  const nextInstance = new Map<string, number>();
  const refreshing = new Map<string, Promise<CookieSession>>();

  const setCookie = (reply: FastifyReply, handle: string, remember: boolean) => {
    void reply.setCookie(COOKIE, handle, {
      httpOnly: true,
      secure: true,
      sameSite: 'strict',
      path: '/',
      ...(remember && { maxAge: env.GATEWAY_REMEMBER_TTL_SECONDS }),
    });
  };
  const clearCookie = (reply: FastifyReply) => {
    void reply.setCookie(COOKIE, '', {
      httpOnly: true,
      secure: true,
      sameSite: 'strict',
      path: '/',
      maxAge: 0,
      expires: new Date(0),
    });
  };

  const refuse = (reply: FastifyReply, refusal: Refusal) => {
    if (refusal.clearCookie) clearCookie(reply);
    if (refusal.status === 401)
      void reply.header('www-authenticate', 'Bearer error="invalid_token"');
    if (refusal.status === 503) void reply.header('retry-after', '1');
    return reply.code(refusal.status).header('cache-control', 'no-store').send(refusal.body);
  };

  /** `x-csrf: 1`, and an `Origin` (when sent) among the allowed ones. */
  const checkCsrf = (request: FastifyRequest, checkOrigin: boolean) => {
    if (request.headers['x-csrf'] !== '1')
      throw new Refusal(403, { error: 'csrf', error_description: 'header x-csrf: 1 required' });
    const origin = request.headers.origin;
    if (checkOrigin && origin !== undefined && !allowedOrigins.has(origin))
      throw new Refusal(403, { error: 'origin', error_description: 'origin not allowed' });
  };

  const handleOf = (request: FastifyRequest): string | undefined => {
    const value = request.cookies[COOKIE];
    return TokenStore.isHandle(value) ? value : undefined;
  };

  /**
   * The live cookie session of a request, or a refusal: unknown handle, or a session the
   * revocation view says is ended (no call to anything but the gateway's own Redis entry).
   */
  const liveSession = async (request: FastifyRequest) => {
    const handle = handleOf(request);
    if (handle === undefined) throw invalidSession('no session');
    const session = await store.get(handle);
    if (session === undefined) throw invalidSession('no session');
    if (!guard.ready)
      throw new Refusal(503, {
        error: 'temporarily_unavailable',
        error_description: 'revocation view not loaded yet, retry shortly',
      });
    const revoked = guard.store.check({
      sub: session.sub,
      sid: session.session_id,
      iat: session.iat,
    });
    if (revoked !== undefined) {
      await store.delete(handle);
      throw invalidSession(
        revoked === 'session_revoked' ? 'session revoked' : 'all sessions of the user were revoked',
      );
    }
    return { handle, session };
  };

  const withPair = (session: CookieSession, pair: TokenPair): CookieSession => {
    const claims = accessClaims(pair.access_token);
    return {
      ...session,
      access_token: pair.access_token,
      refresh_token: pair.refresh_token,
      sub: claims.sub,
      roles: claims.roles,
      iat: claims.iat,
      exp: claims.exp,
    };
  };

  /** One refresh per session at a time: concurrent requests share it. */
  const refreshed = (handle: string, session: CookieSession): Promise<CookieSession> => {
    let flight = refreshing.get(handle);
    if (flight === undefined) {
      flight = (async () => {
        const answer = await sessions.refresh(session.refresh_token);
        if (answer.status === 401 || answer.status === 400) {
          await store.delete(handle);
          throw invalidSession('session ended');
        }
        if (answer.status !== 200 || answer.body === undefined)
          throw new Refusal(503, {
            error: 'temporarily_unavailable',
            error_description: 'could not refresh the session, retry shortly',
          });
        const next = withPair(session, answer.body);
        await store.update(handle, next);
        return next;
      })().finally(() => refreshing.delete(handle));
      refreshing.set(handle, flight);
    }
    return flight;
  };

  const current = async (handle: string, session: CookieSession) =>
    session.exp - env.GATEWAY_REFRESH_AHEAD_SECONDS <= Date.now() / 1000
      ? refreshed(handle, session)
      : session;

  /** `/api/<service>/<rest>`: the service and the rest (still encoded), or a refusal. */
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
        throw new Refusal(400, { error: 'invalid_request', error_description: 'malformed path' });
      }
      if (decoded === '.' || decoded === '..' || /[/\\\0]/.test(decoded))
        throw new Refusal(400, { error: 'invalid_request', error_description: 'path traversal' });
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

  const unavailable = (description: string) =>
    new Refusal(503, { error: 'temporarily_unavailable', error_description: description });

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
      if (!OPAQUE.test(token))
        throw new Refusal(401, { error: 'invalid_token', error_description: 'malformed' });
      key = phantomKey(token);
      const cached = phantom.get(key);
      fromCache = cached !== undefined;
      const exchanged = cached ?? (await exchange(key, token));
      if (exchanged === undefined)
        throw new Refusal(401, { error: 'invalid_token', error_description: 'token not active' });
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

  return async (fastify: FastifyInstance): Promise<void> => {
    await fastify.register(fastifyCookie);
    await fastify.register(replyFrom);

    fastify.setErrorHandler((error, _request, reply) => {
      if (error instanceof Refusal) return refuse(reply, error);
      const status = (error as { statusCode?: number }).statusCode;
      if (status !== undefined && status >= 400 && status < 500)
        return reply
          .code(status)
          .send({ error: 'invalid_request', error_description: (error as Error).message });
      fastify.log.error(error);
      return reply.code(502).send({ error: 'bad_gateway', error_description: 'upstream failed' });
    });

    fastify.post('/bff/login', async (request, reply) => {
      checkCsrf(request, true);
      const parsed = loginBody.safeParse(request.body);
      if (!parsed.success)
        throw new Refusal(400, {
          error: 'invalid_request',
          error_description: parsed.error.message,
        });
      const answer = await sessions.login({ ...parsed.data, token_format: 'jwt' });
      if ([401, 409, 429].includes(answer.status)) {
        if (answer.retryAfter !== null) void reply.header('retry-after', answer.retryAfter);
        return reply
          .code(answer.status)
          .header('cache-control', 'no-store')
          .send(answer.body ?? {});
      }
      if (answer.status !== 200 || answer.body?.session_id === undefined)
        throw new Refusal(502, {
          error: 'bad_gateway',
          error_description: 'sign-in failed upstream',
        });
      const claims = accessClaims(answer.body.access_token);
      const remember = parsed.data.remember === true;
      const ttl = remember ? env.GATEWAY_REMEMBER_TTL_SECONDS : env.GATEWAY_SESSION_TTL_SECONDS;
      const session: CookieSession = {
        access_token: answer.body.access_token,
        refresh_token: answer.body.refresh_token,
        session_id: answer.body.session_id,
        sub: claims.sub,
        roles: claims.roles,
        iat: claims.iat,
        exp: claims.exp,
        csrf_token: randomBytes(32).toString('base64url'),
        expires_at: Date.now() + ttl * 1000,
      };
      const handle = newHandle();
      await store.create(handle, session);
      setCookie(reply, handle, remember);
      return reply.header('cache-control', 'no-store').send({
        user: { sub: session.sub, roles: session.roles },
        session_id: session.session_id,
        csrf_token: session.csrf_token,
      });
    });

    fastify.get('/bff/session', async (_request, reply) => {
      const { session } = await liveSession(_request);
      return reply.header('cache-control', 'no-store').send({
        user: { sub: session.sub, roles: session.roles },
        session_id: session.session_id,
        expires_at: new Date(session.expires_at).toISOString(),
        csrf_token: session.csrf_token,
      });
    });

    fastify.post('/bff/logout', async (request, reply) => {
      checkCsrf(request, true);
      const handle = handleOf(request);
      const session = handle === undefined ? undefined : await store.get(handle);
      if (handle !== undefined && session !== undefined) {
        let access = session.access_token;
        if (session.exp - 1 <= Date.now() / 1000)
          access =
            (await refreshed(handle, session).catch(() => undefined))?.access_token ?? access;
        // 401: already ended (revoked, expired); the cookie session ends here either way.
        const answer = await sessions.logout(access);
        if (answer.status >= 500)
          throw new Refusal(503, {
            error: 'temporarily_unavailable',
            error_description: 'could not end the session, retry shortly',
          });
        await store.delete(handle);
      }
      clearCookie(reply);
      return reply.code(204).send();
    });

    fastify.all('/api/*', async (request, reply) => {
      // A bearer token is no ambient credential (a page cannot make a browser attach one
      // cross-site): no x-csrf for it, and any cookie on the request is ignored.
      const bearer = bearerOf(request);
      if (bearer !== undefined) {
        if (bearer === '')
          throw new Refusal(401, { error: 'invalid_token', error_description: 'malformed' });
        const url = target(request.raw.url ?? request.url);
        return forward(reply, url, await bearerJwt(bearer));
      }
      checkCsrf(request, true);
      const url = target(request.raw.url ?? request.url);
      const live = await liveSession(request);
      const session = await current(live.handle, live.session);
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
      return forward(reply, url, session.access_token);
    });
  };
}
