import type { FastifyHelmetOptions } from '@fastify/helmet';

/**
 * The gateway's own security headers (helmet), on its routes only (/bff/*, /api/*, and the
 * web console at `/` to come): a policy for pages of its own origin, with no inline script.
 * A proxied answer keeps the headers its upstream set (reply-from copies them over these);
 * helmet fills in only what the upstream left out. The defaults every app sets
 * (applySecurityHeaders) stay on the gateway's health and metrics answers.
 */
export const GATEWAY_HELMET: FastifyHelmetOptions = {
  contentSecurityPolicy: {
    useDefaults: false,
    directives: {
      'default-src': ["'self'"],
      'script-src': ["'self'"],
      'style-src': ["'self'"],
      'img-src': ["'self'", 'data:'],
      'connect-src': ["'self'"],
      'object-src': ["'none'"],
      'base-uri': ["'none'"],
      'form-action': ["'self'"],
      'frame-ancestors': ["'none'"],
    },
  },
  frameguard: { action: 'deny' },
  referrerPolicy: { policy: 'no-referrer' },
};
