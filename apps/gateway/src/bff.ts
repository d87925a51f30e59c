import type { FastifyInstance } from 'fastify';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { GatewayEnv } from './config';
import type { CookieSessions } from './cookie-sessions';
import { badRequest, Refusal, unavailable } from './refusal';
import { accessClaims, onBehalfOf, type SessionClient } from './session-client';
import { newHandle, type CookieSession, type TokenStore } from './token-store';

export interface BffDeps {
  env: Pick<GatewayEnv, 'GATEWAY_SESSION_TTL_SECONDS' | 'GATEWAY_REMEMBER_TTL_SECONDS'>;
  store: TokenStore;
  sessions: SessionClient;
  cookies: CookieSessions;
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
export function bffRoutes(fastify: FastifyInstance, { env, store, sessions, cookies }: BffDeps) {
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
    }
    cookies.clearCookie(reply);
    return reply.code(204).send();
  });
}
