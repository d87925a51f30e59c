import type { FastifyReply } from 'fastify';

/** An answer the gateway gives instead of serving a request: status, OAuth-style body. */
export class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly body: { error: string; error_description: string },
    /** Whether the answer also clears the session cookie (the session is gone). */
    readonly clearCookie = false,
  ) {
    super(body.error_description);
  }
}

/** 401 for a cookie session that is gone (unknown, ended, revoked); clears the cookie. */
export const invalidSession = (description: string) =>
  new Refusal(401, { error: 'invalid_token', error_description: description }, true);

/** 401 for a bearer token the gateway will not forward. */
export const invalidToken = (description: string) =>
  new Refusal(401, { error: 'invalid_token', error_description: description });

export const badRequest = (description: string) =>
  new Refusal(400, { error: 'invalid_request', error_description: description });

/** 503: something the gateway needs is not there yet or not answering; retry shortly. */
export const unavailable = (description: string) =>
  new Refusal(503, { error: 'temporarily_unavailable', error_description: description });

/** Sends a refusal: no-store, a bearer challenge on 401, Retry-After on 503. */
export function refuse(
  reply: FastifyReply,
  refusal: Refusal,
  clearCookie: (reply: FastifyReply) => void,
) {
  if (refusal.clearCookie) clearCookie(reply);
  if (refusal.status === 401) void reply.header('www-authenticate', 'Bearer error="invalid_token"');
  if (refusal.status === 503) void reply.header('retry-after', '1');
  return reply.code(refusal.status).header('cache-control', 'no-store').send(refusal.body);
}
