import type { RevocationGuard } from '@app/revocation-guard';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { setTimeout as sleep } from 'node:timers/promises';
import type { GatewayEnv } from './config';
import type { CookieSessions } from './cookie-sessions';
import { phantomKey, type PhantomCache } from './phantom-cache';
import { badRequest, invalidSession, invalidToken, Refusal, refuse, unavailable } from './refusal';
import { accessClaims, onBehalfOf, type SessionClient } from './session-client';
import type { TokenStore } from './token-store';
import { connectionFailed, timedOut, type Upstreams } from './upstreams';

export interface ProxyDeps {
  env: Pick<
    GatewayEnv,
    | 'GATEWAY_UPSTREAM_TIMEOUT_MS'
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
  /** The configured upstreams and their passive health (upstreams.ts). */
  upstreams: Upstreams;
  /** Counts connections to an upstream instance that failed, by service. */
  upstreamFailures: { inc(labels: { service: string }): void };
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
  {
    env,
    store,
    sessions,
    guard,
    cookies,
    phantom,
    introspections,
    upstreams,
    upstreamFailures,
  }: ProxyDeps,
) {
  /** `/api/<service>/<rest>`: the service and the rest of the URL (still encoded), or a refusal. */
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
    if (!upstreams.has(service))
      throw new Refusal(404, { error: 'not_found', error_description: 'no such upstream' });
    return { service, path: `/${rest.join('/')}${query}` };
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

  /**
   * A cookie session's access JWT to forward (refreshed when due), or a refusal; with what to
   * do when the upstream refuses that JWT (below).
   */
  const cookieJwt = async (request: FastifyRequest): Promise<Forwarding> => {
    const live = await cookies.live(request);
    const client = onBehalfOf(request);
    const session = await cookies.current(live.handle, live.session, client);
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
    return {
      jwt: session.access_token,
      // The upstream's view may learn of a revocation before the gateway's own: its 401 is
      // then the first news of it. The session service decides (a refresh, shared with any in
      // flight): a session it ended loses its entry and its cookie now, not on the next call.
      onUnauthorized: async () => {
        try {
          await cookies.refreshed(live.handle, session, client);
          return undefined;
        } catch (error) {
          if (error instanceof Refusal && error.clearCookie) return error;
          return undefined; // the session service did not answer: the upstream's 401 stands
        }
      },
    };
  };

  /**
   * Sends the request to the first instance of `instances` that answers (whatever it answers,
   * 5xx included). An instance that cannot be reached is marked down and counted; a GET or
   * HEAD then goes on to the next one (idempotent: no response came, so trying again is safe),
   * anything else gets 502 at once, as does a request no instance answered.
   */
  const forward = (
    request: FastifyRequest,
    reply: FastifyReply,
    { service, path }: { service: string; path: string },
    { jwt, onUnauthorized }: Forwarding,
    instances = upstreams.order(service),
  ): FastifyReply => {
    const [instance, ...others] = instances;
    if (instance === undefined) return reply.send(noAnswer(service));
    return reply.from(`${instance.base}${path}`, {
      rewriteRequestHeaders: (_original, headers) => {
        const forwarded = { ...headers };
        delete forwarded.cookie;
        delete forwarded['x-csrf'];
        delete forwarded.host;
        delete forwarded.forwarded;
        forwarded.authorization = `Bearer ${jwt}`;
        // The client as the gateway sees it (its own TRUST_PROXY), never as the client claims.
        forwarded['x-forwarded-for'] = request.ip;
        return forwarded;
      },
      // reply-from would retry a GET answered 503 on the same instance: pass it on instead.
      retryDelay: () => null,
      // undici's headers timeout (no answer) and body timeout (no more of it); 300 s by default.
      timeout: env.GATEWAY_UPSTREAM_TIMEOUT_MS,
      onResponse: (_request, _reply, response) => {
        upstreams.answered(instance);
        if (response.statusCode !== 401 || onUnauthorized === undefined) {
          void reply.send(response.stream);
          return;
        }
        void onUnauthorized().then((ended) => {
          if (ended === undefined) return reply.send(response.stream);
          // Drained, not destroyed (an aborted undici body emits an error): the connection stays
          // reusable.
          response.stream.on('error', () => undefined).resume();
          // The upstream's headers were copied onto the reply: its body is not the one sent.
          void reply.removeHeader('content-length').removeHeader('content-type');
          return refuse(reply, ended, (r) => {
            cookies.clearCookie(r);
          });
        });
      },
      onError: (_reply, { error }) => {
        if (timedOut(error)) {
          // It may be acting on the request: marked down, and the request never sent again.
          upstreams.failed(instance);
          upstreamFailures.inc({ service });
          fastify.log.warn({ err: error, upstream: instance.base }, 'upstream timed out');
          void reply.send(
            new Refusal(504, {
              error: 'gateway_timeout',
              error_description: `upstream ${service} did not answer in time`,
            }),
          );
          return;
        }
        if (!connectionFailed(error)) {
          fastify.log.warn({ err: error, upstream: instance.base }, 'upstream failed');
          void reply.send(noAnswer(service));
          return;
        }
        upstreams.failed(instance);
        upstreamFailures.inc({ service });
        fastify.log.warn({ err: error, upstream: instance.base }, 'upstream unreachable');
        const idempotent = request.method === 'GET' || request.method === 'HEAD';
        if (idempotent && others.length > 0)
          forward(request, reply, { service, path }, { jwt, onUnauthorized }, others);
        else void reply.send(noAnswer(service));
      },
    });
  };

  fastify.all('/api/*', async (request, reply) => {
    // A bearer token is no ambient credential (a page cannot make a browser attach one
    // cross-site): no x-csrf for it, and any cookie on the request is ignored.
    const bearer = bearerOf(request);
    if (bearer !== undefined) {
      if (bearer === '') throw invalidToken('malformed');
      const to = target(request.raw.url ?? request.url);
      return forward(request, reply, to, { jwt: await bearerJwt(bearer) });
    }
    cookies.checkCsrf(request);
    const to = target(request.raw.url ?? request.url);
    return forward(request, reply, to, await cookieJwt(request));
  });
}

/** The access JWT a request is forwarded with, and (cookie sessions) what an upstream 401 means:
 * the refusal to send instead of it, or undefined to pass it through. */
interface Forwarding {
  jwt: string;
  onUnauthorized?: () => Promise<Refusal | undefined>;
}

/** 502 when no instance of the service gave an answer. */
const noAnswer = (service: string) =>
  new Refusal(502, {
    error: 'bad_gateway',
    error_description: `no instance of upstream ${service} answered`,
  });
