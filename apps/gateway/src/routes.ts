import fastifyCookie from '@fastify/cookie';
import helmet from '@fastify/helmet';
import replyFrom from '@fastify/reply-from';
import type { RevocationGuard } from '@app/revocation-guard';
import type { FastifyInstance } from 'fastify';
import type { RedisClient } from '@app/redis';
import { bffRoutes } from './bff';
import { consoleRoutes } from './console';
import type { GatewayEnv } from './config';
import { eventRoutes, type EventStreamSettings } from './events';
import { CookieSessions } from './cookie-sessions';
import { oidcRoutes, type OidcProvider } from './oidc-login';
import type { PhantomCache } from './phantom-cache';
import { proxyRoutes, type ProxyDeps } from './proxy';
import { Refusal, refuse } from './refusal';
import { sessionEventRoutes } from './session-events';
import type { SessionClient } from './session-client';
import type { TokenStore } from './token-store';
import { GATEWAY_HELMET } from './security-headers';
import { Upstreams } from './upstreams';

export { COOKIE } from './cookie-sessions';

export interface GatewayDeps {
  env: Pick<
    GatewayEnv,
    | 'GATEWAY_UPSTREAMS'
    | 'GATEWAY_UPSTREAM_COOLOFF_MS'
    | 'GATEWAY_UPSTREAM_TIMEOUT_MS'
    | 'GATEWAY_ALLOWED_ORIGINS'
    | 'GATEWAY_SESSION_TTL_SECONDS'
    | 'GATEWAY_REMEMBER_TTL_SECONDS'
    | 'GATEWAY_REFRESH_AHEAD_SECONDS'
    | 'GATEWAY_CLIENT_ID'
    | 'GATEWAY_CLIENT_SECRET'
    | 'GATEWAY_TEST_HOLD_INTROSPECTION_MS'
  >;
  store: TokenStore;
  /** Single sign-on (oidc-login.ts): the OpenID provider (undefined when not configured) and
   * where pending code flows are kept (Redis, under the gateway's prefix). */
  oidc?: { provider: OidcProvider | undefined; redis: RedisClient; prefix: string } | undefined;
  sessions: SessionClient;
  guard: RevocationGuard;
  phantom: PhantomCache;
  introspections: ProxyDeps['introspections'];
  events?: EventStreamSettings;
  upstreamFailures: ProxyDeps['upstreamFailures'];
}

/** The token handler (/bff/*, bff.ts), its event streams (events.ts, session-events.ts), the
 * proxy (/api/<service>/…, proxy.ts) and the web console (/, console.ts), as one Fastify
 * plugin; refusals (refusal.ts) become their answers here. */
export function gatewayRoutes(deps: GatewayDeps) {
  const cookies = new CookieSessions(deps.env, deps.store, deps.sessions, deps.guard);
  const clearCookie = cookies.clearCookie.bind(cookies);
  const upstreams = new Upstreams(deps.env.GATEWAY_UPSTREAMS, deps.env.GATEWAY_UPSTREAM_COOLOFF_MS);
  return async (fastify: FastifyInstance): Promise<void> => {
    await fastify.register(fastifyCookie);
    await fastify.register(helmet, GATEWAY_HELMET);
    await fastify.register(replyFrom);

    fastify.setErrorHandler((error, _request, reply) => {
      if (error instanceof Refusal) return refuse(reply, error, clearCookie);
      const status = (error as { statusCode?: number }).statusCode;
      if (status !== undefined && status >= 400 && status < 500)
        return reply
          .code(status)
          .send({ error: 'invalid_request', error_description: (error as Error).message });
      fastify.log.error(error);
      return reply.code(502).send({ error: 'bad_gateway', error_description: 'upstream failed' });
    });

    bffRoutes(fastify, { ...deps, cookies, oidc: deps.oidc?.provider });
    oidcRoutes(fastify, {
      provider: deps.oidc?.provider,
      redis: deps.oidc?.redis,
      prefix: deps.oidc?.prefix ?? '',
      env: deps.env,
      store: deps.store,
      sessions: deps.sessions,
      cookies,
      log: (message, detail) => {
        fastify.log.warn(detail, message);
      },
    });
    eventRoutes(fastify, { guard: deps.guard, cookies, settings: deps.events });
    sessionEventRoutes(fastify, {
      guard: deps.guard,
      cookies,
      settings: { keepAliveMs: deps.events?.keepAliveMs ?? 15_000 },
    });
    await consoleRoutes(fastify);
    proxyRoutes(fastify, { ...deps, cookies, upstreams });
  };
}
