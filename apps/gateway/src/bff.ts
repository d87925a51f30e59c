import type { FastifyInstance } from 'fastify';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { GatewayEnv } from './config';
import type { CookieSessions } from './cookie-sessions';
import { providerLogoutUrl, type OidcProvider } from './oidc-login';
import { badRequest, Refusal, unavailable } from './refusal';
import { accessClaims, onBehalfOf, type SessionClient, type TokenPair } from './session-client';
import { newHandle, type CookieSession, type TokenStore } from './token-store';

export interface BffDeps {
  env: Pick<
    GatewayEnv,
    'GATEWAY_SESSION_TTL_SECONDS' | 'GATEWAY_REMEMBER_TTL_SECONDS' | 'GATEWAY_ALLOWED_ORIGINS'
  >;
  store: TokenStore;
  sessions: SessionClient;
  cookies: CookieSessions;
  /** The OpenID provider, when configured: its sessions' logout answers its end-session URL. */
  oidc?: OidcProvider | undefined;
}

/** A new cookie session's server-side entry, from the session service's sign-in answer. */
export function cookieSessionOf(
  pair: TokenPair & { session_id: string },
  ttlSeconds: number,
): CookieSession {
  const claims = accessClaims(pair.access_token);
  return {
    access_token: pair.access_token,
    refresh_token: pair.refresh_token,
    session_id: pair.session_id,
    sub: claims.sub,
    roles: claims.roles,
    iat: claims.iat,
    exp: claims.exp,
    csrf_token: randomBytes(32).toString('base64url'),
    expires_at: Date.now() + ttlSeconds * 1000,
  };
}

const loginBody = z.strictObject({
  username: z.string().min(1).max(200),
  password: z.string().min(1).max(1_000),
  device: z.strictObject({
    name: z.string().min(1).max(200),
    platform: z.string().min(1).max(100).optional(),
  }),
  remember: z.boolean().optional(),
  /** After a 409 device_limit_reached: the session the user chose to sign out first. */
  end_session_id: z.string().min(1).max(100).optional(),
});

/** The token handler: `POST /bff/login`, `GET /bff/session`, `POST /bff/logout`. */
export function bffRoutes(
  fastify: FastifyInstance,
  { env, store, sessions, cookies, oidc }: BffDeps,
) {
  fastify.post('/bff/login', async (request, reply) => {
    cookies.checkCsrf(request);
    const parsed = loginBody.safeParse(request.body);
    if (!parsed.success) throw badRequest(parsed.error.message);
    const answer = await sessions.login(
      { ...parsed.data, token_format: 'jwt' },
      onBehalfOf(request),
    );
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
    const remember = parsed.data.remember === true;
    const ttl = remember ? env.GATEWAY_REMEMBER_TTL_SECONDS : env.GATEWAY_SESSION_TTL_SECONDS;
    const session = cookieSessionOf({ ...answer.body, session_id: answer.body.session_id }, ttl);
    const handle = newHandle();
    await store.create(handle, session);
    cookies.setCookie(reply, handle, remember);
    return reply.header('cache-control', 'no-store').send({
      user: { sub: session.sub, roles: session.roles },
      session_id: session.session_id,
      csrf_token: session.csrf_token,
    });
  });

  fastify.get('/bff/session', async (request, reply) => {
    const { session } = await cookies.live(request);
    return reply.header('cache-control', 'no-store').send({
      user: { sub: session.sub, roles: session.roles },
      session_id: session.session_id,
      expires_at: new Date(session.expires_at).toISOString(),
      csrf_token: session.csrf_token,
    });
  });

  fastify.post('/bff/logout', async (request, reply) => {
    cookies.checkCsrf(request);
    const handle = cookies.handleOf(request);
    const session = handle === undefined ? undefined : await store.get(handle);
    let endSessionUrl: string | undefined;
    if (handle !== undefined && session !== undefined) {
      let access = session.access_token;
      if (session.exp - 1 <= Date.now() / 1000)
        access =
          (await cookies.refreshed(handle, session, onBehalfOf(request)).catch(() => undefined))
            ?.access_token ?? access;
      // 401: already ended (revoked, expired); the cookie session ends here either way.
      const answer = await sessions.logout(access, onBehalfOf(request));
      if (answer.status >= 500) throw unavailable('could not end the session, retry shortly');
      await store.delete(handle);
      // Signed in through the provider: the browser is sent there to end that session too.
      endSessionUrl = await providerLogoutUrl(
        oidc,
        session.id_token,
        request,
        env.GATEWAY_ALLOWED_ORIGINS,
      );
    }
    cookies.clearCookie(reply);
    if (endSessionUrl !== undefined)
      return reply
        .code(200)
        .header('cache-control', 'no-store')
        .send({ end_session_url: endSessionUrl });
    return reply.code(204).send();
  });
}
