import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GuardOutcome, GuardRejection, VerifiedSession } from '../authenticator';
import { rejectionBody, rejectionHeaders, type RevocationGuard } from '../revocation-guard';

/** The header marking an answer given on a stale revocation view (fail-open only). */
export const STALE_VIEW_HEADER = 'revocation-view-stale';

/** Where the middleware puts the verified session on the request. */
export interface AuthenticatedRequest {
  auth?: VerifiedSession;
}

/** Writes a rejection to a plain Node response (what Express and Connect give handlers). */
export function sendRejection(response: ServerResponse, outcome: GuardRejection): void {
  const body = JSON.stringify(rejectionBody(outcome));
  response.writeHead(outcome.status, {
    ...rejectionHeaders(outcome),
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  response.end(body);
}

/**
 * Express (or Connect, or plain `node:http`) middleware: answers 401/403/503 itself, or sets
 * `req.auth` to the verified session and calls `next()`.
 *
 * ```ts
 * app.use('/api', revocationMiddleware(guard));
 * app.get('/api/me', (req, res) => res.json({ sub: req.auth.sub, session_id: req.auth.sid }));
 * ```
 */
export function revocationMiddleware(
  guard: RevocationGuard,
  options: { roles?: readonly string[] } = {},
) {
  return (
    request: IncomingMessage & AuthenticatedRequest,
    response: ServerResponse,
    next: (error?: unknown) => void,
  ): void => {
    const finish = (outcome: GuardOutcome): void => {
      if (!outcome.ok) {
        sendRejection(response, outcome);
        return;
      }
      if (outcome.stale) response.setHeader(STALE_VIEW_HEADER, 'true');
      request.auth = outcome.session;
      next();
    };
    const outcome = guard.decide(request.headers.authorization, options.roles);
    if (outcome instanceof Promise) outcome.then(finish, next);
    else finish(outcome);
  };
}

/** The subset of Fastify's request and reply this hook uses (no dependency on Fastify itself). */
interface FastifyLikeRequest {
  headers: IncomingMessage['headers'];
  auth?: VerifiedSession;
}
interface FastifyLikeReply {
  code(status: number): FastifyLikeReply;
  headers(values: Record<string, string>): FastifyLikeReply;
  header(name: string, value: string): FastifyLikeReply;
  send(payload: unknown): unknown;
}

/**
 * A Fastify `onRequest` (or `preHandler`) hook: answers 401/403/503 itself, or sets
 * `request.auth` to the verified session. Declare `auth` on FastifyRequest for typing:
 *
 * ```ts
 * app.decorateRequest('auth', undefined);
 * app.addHook('onRequest', revocationHook(guard));
 * ```
 */
export function revocationHook(
  guard: RevocationGuard,
  options: { roles?: readonly string[] } = {},
) {
  return async (
    request: FastifyLikeRequest,
    reply: FastifyLikeReply,
  ): Promise<FastifyLikeReply | undefined> => {
    const decided = guard.decide(request.headers.authorization, options.roles);
    const outcome = decided instanceof Promise ? await decided : decided;
    if (!outcome.ok) {
      // An async hook that has answered returns the reply, so Fastify stops there.
      reply
        .code(outcome.status)
        .headers({ ...rejectionHeaders(outcome), 'cache-control': 'no-store' })
        .send(rejectionBody(outcome));
      return reply;
    }
    if (outcome.stale) reply.header(STALE_VIEW_HEADER, 'true');
    request.auth = outcome.session;
    return undefined;
  };
}
