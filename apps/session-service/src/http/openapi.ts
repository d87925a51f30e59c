import type { INestApplication } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import { z } from 'zod';
import {
  BACKCHANNEL_LOGOUT_PATH,
  guardBackchannelLogout,
  logoutTokenBody,
} from '../oidc/backchannel-logout.controller';
import { loginBody, oidcBody, planBody, refreshBody, tokenBody } from './schemas';

/** Request bodies come from the same zod schemas the validation pipe uses, so the docs cannot drift. */
const BODIES: Record<string, Record<string, z.ZodType>> = {
  '/auth/login': { post: loginBody },
  '/auth/oidc': { post: oidcBody },
  '/auth/refresh': { post: refreshBody },
  '/admin/users/{userId}/plan': { put: planBody },
  '/oauth/revoke': { post: tokenBody },
  '/oauth/introspect': { post: tokenBody },
  [BACKCHANNEL_LOGOUT_PATH]: { post: logoutTokenBody },
};

/** Form bodies only: OpenID Connect Back-Channel Logout 1.0 §2.5. */
const FORM_ONLY_BODIES = new Set([BACKCHANNEL_LOGOUT_PATH]);

/** The OAuth endpoints take form bodies, as RFC 7009 and RFC 7662 define them (JSON too). */
const FORM_BODIES = new Set(['/oauth/revoke', '/oauth/introspect']);

export function openApiDocument(app: INestApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('Session service')
    .setDescription(
      'Sign-in, sessions, tokens and every way a session ends. Each session end is relayed to the ' +
        'revocation topic (see libs/contracts/asyncapi.yaml).',
    )
    .setVersion('1')
    .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' })
    .build();
  const document = SwaggerModule.createDocument(app, config);
  for (const [path, operations] of Object.entries(BODIES)) {
    for (const [method, schema] of Object.entries(operations)) {
      const operation = (
        document.paths[path] as Record<string, { requestBody?: unknown }> | undefined
      )?.[method];
      if (!operation) continue;
      operation.requestBody = {
        required: true,
        content: Object.fromEntries(
          (FORM_ONLY_BODIES.has(path)
            ? ['application/x-www-form-urlencoded']
            : FORM_BODIES.has(path)
              ? ['application/x-www-form-urlencoded', 'application/json']
              : ['application/json']
          ).map((type) => [type, { schema: z.toJSONSchema(schema, { io: 'input' }) }]),
        ),
      };
    }
  }
  documentIntrospection(document);
  documentBackchannelLogout(document);
  return document;
}

/**
 * `POST /oauth/introspect` answers RFC 7662 JSON, or, for an active opaque access token asked
 * with `Accept: application/jwt`, the access JWT it stands for (phantom tokens).
 */
function documentIntrospection(document: OpenAPIObject): void {
  const operation = document.paths['/oauth/introspect']?.post;
  if (!operation) return;
  operation.parameters = [
    ...(operation.parameters ?? []),
    {
      name: 'accept',
      in: 'header',
      required: false,
      description:
        'application/jwt: for an active opaque (at_) access token, answer the access JWT it ' +
        'stands for instead of the JSON',
      schema: { type: 'string' },
    },
  ];
  operation.responses['200'] = {
    description:
      'RFC 7662: { active: false } for anything but an access token of a live session; ' +
      '{ active: true, token_type, client_id, iss, sub, aud, exp, iat, jti, sid, roles? } ' +
      'otherwise; for an active opaque access token asked with Accept: application/jwt, the ' +
      'access JWT itself',
    content: {
      'application/json': {
        schema: {
          type: 'object',
          required: ['active'],
          properties: { active: { type: 'boolean' } },
          additionalProperties: true,
        },
      },
      'application/jwt': { schema: { type: 'string' } },
    },
  };
}

/** `POST /oidc/backchannel-logout`: OpenID Connect Back-Channel Logout 1.0's answers. */
function documentBackchannelLogout(document: OpenAPIObject): void {
  const operation = document.paths[BACKCHANNEL_LOGOUT_PATH]?.post;
  if (!operation) return;
  operation.summary = 'OpenID Connect Back-Channel Logout 1.0 receiver (the provider calls it)';
  operation.description =
    'Verifies the logout token (a trusted issuer’s key, typ logout+jwt or none, iss, aud, iat, ' +
    'exp, a jti not seen before, the back-channel logout event, sid and/or sub, no nonce) and ' +
    'ends the sessions signed in with that provider session (sid), or with sub only every ' +
    'session of that user from that issuer, each with a revocation event. Answers carry ' +
    'Cache-Control: no-store.';
  operation.security = [];
  const error = {
    'application/json': {
      schema: {
        type: 'object',
        required: ['error', 'error_description'],
        properties: { error: { type: 'string' }, error_description: { type: 'string' } },
      },
    },
  };
  operation.responses = {
    '200': { description: 'the sessions ended (also when none was live)' },
    '400': {
      description: 'invalid_request: the logout token, or the request, is not valid',
      content: error,
    },
    '429': { description: 'too many refused logout tokens from this address', content: error },
    '503': {
      description: 'the issuer’s keys or the session store are unreachable; retry',
      content: error,
    },
  };
}

/** Serves the document at /docs (UI) and /docs-json. */
export function serveOpenApi(app: INestApplication): void {
  SwaggerModule.setup('docs', app, openApiDocument(app));
}

/** What the session service's HTTP app needs besides Nest's defaults. */
export function configureSessionApp(app: NestFastifyApplication): void {
  guardBackchannelLogout(app);
  serveOpenApi(app);
}
