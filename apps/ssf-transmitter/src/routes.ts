import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { SsfClient } from './config';
import {
  createStreamRequest,
  invalidRequest,
  parseBody,
  pollRequest,
  replaceStreamRequest,
  SsfError,
  statusRequest,
  subjectRequest,
  updateStreamRequest,
  verifyRequest,
} from './streams/stream-config';
import type { Transmitter } from './transmitter';

declare module 'fastify' {
  interface FastifyRequest {
    ssfClient?: SsfClient;
  }
}

const unauthenticated = () =>
  new SsfError(401, 'invalid_token', 'a bearer token of a configured SSF client is required');

function client(request: FastifyRequest): SsfClient {
  if (!request.ssfClient) throw unauthenticated();
  return request.ssfClient;
}

function streamIdQuery(request: FastifyRequest, required: true): string;
function streamIdQuery(request: FastifyRequest, required: false): string | undefined;
function streamIdQuery(request: FastifyRequest, required: boolean): string | undefined {
  const value = (request.query as Record<string, unknown>).stream_id;
  if (value === undefined && !required) return undefined;
  if (typeof value !== 'string' || value === '')
    throw invalidRequest('stream_id: one stream_id query parameter is required');
  return value;
}

/**
 * SSF 1.0 discovery and JWKS (open), and the management API and poll endpoint (bearer token
 * of an SSF_CLIENTS entry; a client reaches only its own streams, others' are 404). Errors
 * answer `{error, error_description}`.
 */
export function ssfRoutes(transmitter: Transmitter) {
  return async (fastify: FastifyInstance): Promise<void> => {
    fastify.setErrorHandler((error, _request, reply: FastifyReply) => {
      if (error instanceof SsfError) {
        if (error.status === 401) void reply.header('WWW-Authenticate', 'Bearer realm="ssf"');
        return reply
          .code(error.status)
          .send({ error: error.error, error_description: error.message });
      }
      const status = (error as { statusCode?: number }).statusCode;
      if (status !== undefined && status >= 400 && status < 500)
        return reply
          .code(status)
          .send({ error: 'invalid_request', error_description: (error as Error).message });
      fastify.log.error(error);
      return reply
        .code(500)
        .send({ error: 'server_error', error_description: 'the transmitter failed; try again' });
    });

    fastify.get('/.well-known/ssf-configuration', () =>
      Promise.resolve(transmitter.configuration()),
    );
    fastify.get('/jwks.json', (_request, reply) =>
      reply.header('Cache-Control', 'public, max-age=300').send(transmitter.jwks()),
    );

    await fastify.register((ssf) => {
      ssf.addHook('onRequest', async (request, reply) => {
        void reply.header('Cache-Control', 'no-store');
        const token = /^Bearer +(\S+)$/i.exec(request.headers.authorization ?? '')?.[1];
        request.ssfClient = transmitter.authenticate(token);
        if (!request.ssfClient) throw unauthenticated();
      });

      ssf.post('/ssf/streams', async (request, reply) => {
        const body = parseBody(createStreamRequest, request.body);
        return reply.code(201).send(await transmitter.createStream(client(request), body));
      });
      ssf.get('/ssf/streams', (request) => {
        const streamId = streamIdQuery(request, false);
        return Promise.resolve(
          streamId === undefined
            ? transmitter.listStreams(client(request))
            : transmitter.readStream(client(request), streamId),
        );
      });
      ssf.patch('/ssf/streams', async (request) =>
        transmitter.changeStream(
          client(request),
          parseBody(updateStreamRequest, request.body),
          'update',
        ),
      );
      ssf.put('/ssf/streams', async (request) =>
        transmitter.changeStream(
          client(request),
          parseBody(replaceStreamRequest, request.body),
          'replace',
        ),
      );
      ssf.delete('/ssf/streams', async (request, reply) => {
        await transmitter.deleteStream(client(request), streamIdQuery(request, true));
        return reply.code(204).send();
      });

      ssf.get('/ssf/status', (request) =>
        Promise.resolve(transmitter.readStatus(client(request), streamIdQuery(request, true))),
      );
      ssf.post('/ssf/status', async (request) => {
        const { stream_id, status, reason } = parseBody(statusRequest, request.body);
        return transmitter.changeStatus(client(request), stream_id, status, reason);
      });

      // `::` is a literal colon in a Fastify path.
      ssf.post('/ssf/subjects::add', async (request, reply) => {
        await transmitter.changeSubject(
          client(request),
          parseBody(subjectRequest, request.body),
          true,
        );
        return reply.code(200).send();
      });
      ssf.post('/ssf/subjects::remove', async (request, reply) => {
        await transmitter.changeSubject(
          client(request),
          parseBody(subjectRequest, request.body),
          false,
        );
        return reply.code(204).send();
      });

      ssf.post('/ssf/verify', async (request, reply) => {
        const { stream_id, state } = parseBody(verifyRequest, request.body);
        await transmitter.verify(client(request), stream_id, state);
        return reply.code(204).send();
      });

      ssf.post<{ Params: { streamId: string } }>('/ssf/poll/:streamId', async (request) =>
        transmitter.poll(
          client(request),
          request.params.streamId,
          parseBody(pollRequest, request.body),
        ),
      );
      return Promise.resolve();
    });
  };
}
