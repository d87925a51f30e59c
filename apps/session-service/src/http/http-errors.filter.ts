import {
  Catch,
  HttpException,
  HttpStatus,
  Logger,
  type ArgumentsHost,
  type ExceptionFilter,
} from '@nestjs/common';
import type { FastifyReply } from 'fastify';

/** ioredis errors that mean "Redis is unreachable right now", not "this request is wrong". */
const UNAVAILABLE = [
  "Stream isn't writeable",
  'Connection is closed',
  'Command timed out',
  'Reached the max retries per request limit',
  'connect ECONNREFUSED',
  // A Redis Cluster with a node down, failing over, or not yet known.
  "Cluster isn't ready",
  'CLUSTERDOWN',
  'Too many Cluster redirections',
  'Failed to refresh slots cache',
  // A node that no longer serves the slot refused the command (it did not run): the slot map
  // is stale for a moment after a failover.
  'MOVED ',
  // A pipeline's connection closed before its replies came: the outcome is unknown, as with
  // "Connection is closed" (a session end may have happened; retrying it is safe).
  'Command aborted due to connection close',
];

/**
 * Shapes every error answer: OAuth-style `{ error, error_description }` bodies, RFC 6750
 * `WWW-Authenticate` on 401s of bearer routes, `Retry-After` on 429 and 503. Redis being
 * unreachable is a 503 at once (requests never queue behind reconnects); anything else
 * unexpected is a 500 that reveals nothing.
 */
@Catch()
export class HttpErrorsFilter implements ExceptionFilter {
  private readonly logger = new Logger('Http');

  catch(error: unknown, host: ArgumentsHost): void {
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    if (error instanceof HttpException) {
      const body = error.getResponse();
      const status = error.getStatus();
      const shaped =
        typeof body === 'string'
          ? { error: codeFor(status), error_description: body }
          : normalize(body, status);
      // RFC 6749 §5.2: a failed client authentication over HTTP answers a challenge.
      if (status === 401 && shaped.error === 'invalid_client')
        void reply.header('WWW-Authenticate', 'Basic realm="session-service"');
      if (status === 401 && shaped.error === 'invalid_token') {
        void reply.header(
          'WWW-Authenticate',
          `Bearer error="invalid_token", error_description="${String(shaped.error_description).replaceAll('"', "'")}"`,
        );
      }
      if (typeof shaped.retry_after === 'number')
        void reply.header('Retry-After', String(shaped.retry_after));
      void reply.status(status).send(shaped);
      return;
    }
    const message = error instanceof Error ? error.message : String(error);
    if (UNAVAILABLE.some((fragment) => message.includes(fragment))) {
      void reply.status(HttpStatus.SERVICE_UNAVAILABLE).header('Retry-After', '1').send({
        error: 'temporarily_unavailable',
        error_description: 'session store unreachable, retry shortly',
      });
      return;
    }
    this.logger.error(error instanceof Error ? (error.stack ?? message) : message);
    void reply
      .status(HttpStatus.INTERNAL_SERVER_ERROR)
      .send({ error: 'server_error', error_description: 'unexpected error' });
  }
}

function normalize(body: object, status: number): Record<string, unknown> {
  const record = body as Record<string, unknown>;
  if (typeof record.error === 'string' && record.error_description !== undefined) return record;
  // Nest's and Fastify's own shapes, e.g. { statusCode, message, error: 'Bad Request' }.
  const description = Array.isArray(record.message) ? record.message.join('; ') : record.message;
  return {
    error: codeFor(status),
    error_description: typeof description === 'string' ? description : '',
  };
}

function codeFor(status: number): string {
  switch (status) {
    case 400:
      return 'invalid_request';
    case 401:
      return 'invalid_token';
    case 403:
      return 'insufficient_scope';
    case 404:
      return 'not_found';
    case 429:
      return 'rate_limited';
    default:
      return status >= 500 ? 'server_error' : 'error';
  }
}
