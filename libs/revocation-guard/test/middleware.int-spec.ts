import { buildRevocationEvent, encodeHeartbeat, encodeRevocation } from '@app/contracts';
import { ensureTopics } from '@app/kafka';
import {
  createRevocationGuard,
  revocationHook,
  revocationMiddleware,
  type AuthenticatedRequest,
  type RevocationGuard,
  type VerifiedSession,
} from '@app/revocation-guard';
import { closeServer, eventually, testInfra, uniqueName } from '@app/testing';
import express from 'express';
import fastify, { type FastifyInstance } from 'fastify';
import {
  base64url,
  exportJWK,
  generateKeyPair,
  SignJWT,
  type CryptoKey,
  type JWK,
  type JWTPayload,
} from 'jose';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { once } from 'node:events';
import { createHmac, createPublicKey, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

// The guard's framework-free entry point, outside NestJS: one guard on a real Kafka topic,
// mounted in a plain node:http server, in Express 5 and in Fastify 5. The test plays the
// session service (an Ed25519 key, its JWKS over HTTP, tokens it mints) and the publisher
// (revocation events and partition heartbeats produced straight to the topic).

const PARTITIONS = [0, 1, 2];
const HEARTBEAT_INTERVAL_MS = 500;
const AUDIENCE = 'middleware-test-api';
const KID = 'ed25519-test-key';

type ServerName = 'node' | 'express' | 'fastify';
const SERVER_NAMES: ServerName[] = ['node', 'express', 'fastify'];

interface Answer {
  status: number;
  wwwAuthenticate: string | null;
  body: unknown;
}

const invalidToken = (description: string): Answer => ({
  status: 401,
  wwwAuthenticate: `Bearer error="invalid_token", error_description="${description}"`,
  body: { error: 'invalid_token', error_description: description },
});

/** The same expected answer from each of the three servers. */
const onEvery = <T>(expected: T): Record<ServerName, T> => ({
  node: expected,
  express: expected,
  fastify: expected,
});

const json = (value: object): string => base64url.encode(JSON.stringify(value));

/** What the routes answer with, from the session the guard put on the request. */
const meOf = (auth: VerifiedSession | undefined) => ({ sub: auth?.sub, session_id: auth?.sid });
const adminOf = (auth: VerifiedSession | undefined) => ({ sub: auth?.sub, roles: auth?.roles });

describe('revocation guard middleware outside NestJS: node:http, Express 5, Fastify 5 (real Kafka)', () => {
  const brokers = testInfra().kafkaBrokers;
  const topic = uniqueName('middleware-revocations');
  const kafka = new Kafka({
    clientId: uniqueName('middleware-test'),
    brokers,
    logLevel: logLevel.NOTHING,
  });
  let producer: Producer | undefined;
  let heartbeatTimer: NodeJS.Timeout | undefined;
  let privateKey: CryptoKey;
  let publicJwk: JWK;
  let jwksServer: Server | undefined;
  const jwksRequests: string[] = [];
  let issuer = '';
  let guard: RevocationGuard | undefined;
  const guardLog: string[] = [];
  let nodeServer: Server | undefined;
  let expressServer: Server | undefined;
  let fastifyApp: FastifyInstance | undefined;
  const baseUrl = {} as Record<ServerName, string>;

  const urlOf = (server: Server) =>
    `http://127.0.0.1:${(server.address() as AddressInfo).port.toString()}`;

  async function listen(server: Server): Promise<string> {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return urlOf(server);
  }

  async function sendHeartbeats(): Promise<void> {
    await producer?.send({
      topic,
      acks: -1,
      messages: PARTITIONS.map((partition) =>
        encodeHeartbeat(
          {
            publisher_id: 'middleware-test',
            sent_at: Date.now(),
            interval_ms: HEARTBEAT_INTERVAL_MS,
            partitions: PARTITIONS.length,
          },
          partition,
        ),
      ),
    });
  }

  async function revoke(userId: string, sessionId: string | undefined, at = Date.now()) {
    await producer!.send({
      topic,
      acks: -1,
      messages: [
        encodeRevocation(
          buildRevocationEvent({
            issuer,
            userId,
            ...(sessionId === undefined ? {} : { sessionId }),
            initiatingEntity: sessionId === undefined ? 'admin' : 'user',
            reason: sessionId === undefined ? 'admin_logout_all' : 'user_logout',
            at,
          }),
        ),
      ],
    });
  }

  const nowSeconds = () => Math.floor(Date.now() / 1000);

  /** The claims the session service would put in an access token, with `overrides` applied. */
  function claims(sub: string, sid: string, overrides: JWTPayload = {}): JWTPayload {
    const iat = nowSeconds();
    return {
      iss: issuer,
      sub,
      aud: AUDIENCE,
      iat,
      exp: iat + 300,
      jti: randomUUID(),
      sid,
      ...overrides,
    };
  }

  /** An access token signed with the published Ed25519 key (or `options.key`). */
  function sign(
    payload: JWTPayload,
    options: { kid?: string; typ?: string; key?: CryptoKey; alg?: string } = {},
  ): Promise<string> {
    return new SignJWT(payload)
      .setProtectedHeader({
        alg: options.alg ?? 'EdDSA',
        kid: options.kid ?? KID,
        typ: options.typ ?? 'at+jwt',
      })
      .sign(options.key ?? privateKey);
  }

  const token = (sub: string, sid: string, overrides: JWTPayload = {}) =>
    sign(claims(sub, sid, overrides));

  async function call(server: ServerName, path: string, authorization?: string): Promise<Answer> {
    const response = await fetch(`${baseUrl[server]}${path}`, {
      headers: authorization === undefined ? {} : { authorization },
    });
    const text = await response.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: compared as text
    }
    return {
      status: response.status,
      wwwAuthenticate: response.headers.get('www-authenticate'),
      body,
    };
  }

  /** The same request to each of the three servers. */
  async function onAll(path: string, authorization?: string): Promise<Record<ServerName, Answer>> {
    const answers = await Promise.all(SERVER_NAMES.map((name) => call(name, path, authorization)));
    return { node: answers[0]!, express: answers[1]!, fastify: answers[2]! };
  }

  const bearer = (value: string) => `Bearer ${value}`;
  const ok = (sub: string, sid: string): Answer => ({
    status: 200,
    wwwAuthenticate: null,
    body: { sub, session_id: sid },
  });
  const everyStatusIs = (answers: Record<ServerName, Answer>, status: number) =>
    SERVER_NAMES.every((name) => answers[name].status === status) ? true : undefined;

  async function cacheHits(): Promise<number> {
    const { values } = await guard!.metrics.verifications.get();
    return values.find((value) => value.labels.result === 'hit')?.value ?? 0;
  }

  beforeAll(async () => {
    // The topic, and heartbeats on every partition for as long as the test runs.
    const admin = kafka.admin();
    await admin.connect();
    try {
      await ensureTopics(admin, [
        { topic, numPartitions: PARTITIONS.length, replicationFactor: 1 },
      ]);
    } finally {
      await admin.disconnect();
    }
    producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    await sendHeartbeats();
    let beating = false;
    heartbeatTimer = setInterval(() => {
      if (beating) return;
      beating = true;
      sendHeartbeats()
        .catch(() => undefined) // the next beat retries; a stale view would show as 503s
        .finally(() => {
          beating = false;
        });
    }, HEARTBEAT_INTERVAL_MS);

    // The issuer: an Ed25519 key and its JWKS.
    const pair = await generateKeyPair('Ed25519', { extractable: true });
    privateKey = pair.privateKey;
    publicJwk = { ...(await exportJWK(pair.publicKey)), kid: KID, alg: 'EdDSA', use: 'sig' };
    jwksServer = createServer((request, response) => {
      jwksRequests.push(request.url ?? '');
      if (request.method === 'GET' && request.url === '/jwks.json') {
        response
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ keys: [publicJwk] }));
      } else {
        response.writeHead(404).end();
      }
    });
    issuer = await listen(jwksServer);

    guard = createRevocationGuard({
      serviceName: 'middleware-test',
      instanceId: uniqueName('instance'),
      brokers,
      topic,
      jwksUrl: `${issuer}/jwks.json`,
      issuer,
      audience: AUDIENCE,
      freshnessBoundMs: 5_000,
      logger: {
        log: (message) => guardLog.push(`log: ${message}`),
        warn: (message) => guardLog.push(`warn: ${message}`),
        error: (message) => guardLog.push(`error: ${message}`),
      },
    });
    await guard.start();

    // 1. Plain node:http, the middleware called by hand.
    const me = revocationMiddleware(guard);
    const adminOnly = revocationMiddleware(guard, { roles: ['admin'] });
    nodeServer = createServer((request: IncomingMessage, response: ServerResponse) => {
      const authenticated = request as IncomingMessage & AuthenticatedRequest;
      const [middleware, answer] =
        request.url === '/me'
          ? [me, meOf]
          : request.url === '/admin'
            ? [adminOnly, adminOf]
            : [undefined, undefined];
      if (!middleware) {
        response.writeHead(404).end();
        return;
      }
      middleware(authenticated, response, (error) => {
        if (error !== undefined) {
          response.writeHead(500).end();
          return;
        }
        response
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify(answer(authenticated.auth)));
      });
    });
    baseUrl.node = await listen(nodeServer);

    // 2. Express 5.
    const app = express();
    app.get('/me', revocationMiddleware(guard), (request, response) => {
      response.json(meOf((request as AuthenticatedRequest).auth));
    });
    app.get('/admin', revocationMiddleware(guard, { roles: ['admin'] }), (request, response) => {
      response.json(adminOf((request as AuthenticatedRequest).auth));
    });
    expressServer = createServer(app);
    baseUrl.express = await listen(expressServer);

    // 3. Fastify 5: the hook on every route, plus a route-level one requiring a role.
    fastifyApp = fastify({ logger: false });
    fastifyApp.decorateRequest('auth', undefined);
    fastifyApp.addHook('onRequest', revocationHook(guard));
    fastifyApp.get('/me', (request) => meOf((request as AuthenticatedRequest).auth));
    fastifyApp.get(
      '/admin',
      { onRequest: revocationHook(guard, { roles: ['admin'] }) },
      (request) => adminOf((request as AuthenticatedRequest).auth),
    );
    await fastifyApp.listen({ port: 0, host: '127.0.0.1' });
    baseUrl.fastify = urlOf(fastifyApp.server);

    // Ready means replayed; fresh means a heartbeat was read from every partition since.
    await eventually('a fresh revocation view', () =>
      guard?.health().freshness.fresh === true ? true : undefined,
    ).catch((error: unknown) => {
      throw new Error(`${(error as Error).message}; the guard logged:\n${guardLog.join('\n')}`);
    });
  });

  afterAll(async () => {
    clearInterval(heartbeatTimer);
    await guard?.stop();
    await Promise.allSettled([
      closeServer(nodeServer),
      closeServer(expressServer),
      fastifyApp?.close(),
      closeServer(jwksServer),
    ]);
    await producer?.disconnect();
  });

  it('answers a valid token with its subject and session on all three servers', async () => {
    const user = uniqueName('user');
    const sid = uniqueName('sid');
    expect(guard!.ready).toBe(true);
    expect(await onAll('/me', bearer(await token(user, sid)))).toEqual(onEvery(ok(user, sid)));
  });

  it('rejects a revoked session on all three servers; the same user’s other session stays valid', async () => {
    const user = uniqueName('user');
    const [revoked, other] = [uniqueName('sid'), uniqueName('sid')];
    const revokedToken = bearer(await token(user, revoked));
    const otherToken = bearer(await token(user, other));
    expect(await onAll('/me', revokedToken)).toEqual(onEvery(ok(user, revoked)));
    expect(await onAll('/me', otherToken)).toEqual(onEvery(ok(user, other)));

    await revoke(user, revoked);

    await eventually('the revocation to reach the guard', async () =>
      everyStatusIs(await onAll('/me', revokedToken), 401),
    );
    expect(await onAll('/me', revokedToken)).toEqual(onEvery(invalidToken('session revoked')));
    expect(await onAll('/me', otherToken)).toEqual(onEvery(ok(user, other)));
  });

  it('still rejects a token it verified and cached before, once its session is revoked', async () => {
    const user = uniqueName('user');
    const sid = uniqueName('sid');
    const cached = bearer(await token(user, sid));
    const hitsBefore = await cacheHits();
    for (let round = 0; round < 10; round += 1)
      expect(await onAll('/me', cached)).toEqual(onEvery(ok(user, sid)));
    // 30 requests; only the first round (3 at once) can have needed a signature check.
    expect((await cacheHits()) - hitsBefore).toBeGreaterThanOrEqual(27);

    await revoke(user, sid);

    await eventually('the cached token to be rejected', async () =>
      everyStatusIs(await onAll('/me', cached), 401),
    );
    const hitsAtRejection = await cacheHits();
    for (let round = 0; round < 5; round += 1)
      expect(await onAll('/me', cached)).toEqual(onEvery(invalidToken('session revoked')));
    // Still cached, still rejected: the revocation check does not depend on a cache miss.
    expect((await cacheHits()) - hitsAtRejection).toBe(15);
  });

  it('a user-wide revocation at T rejects tokens issued at or before T and accepts later ones', async () => {
    const user = uniqueName('user');
    const bystander = uniqueName('user');
    const now = nowSeconds();
    const T = now * 1000; // the boundary itself: a token with iat * 1000 === T is revoked
    const older = bearer(await token(user, 'sid-older', { iat: now - 2, exp: now + 300 }));
    const atT = bearer(await token(user, 'sid-at-t', { iat: now, exp: now + 300 }));
    const bystanderToken = bearer(await token(bystander, 'sid-b', { iat: now - 2 }));
    expect(await onAll('/me', older)).toEqual(onEvery(ok(user, 'sid-older')));
    expect(await onAll('/me', atT)).toEqual(onEvery(ok(user, 'sid-at-t')));

    await revoke(user, undefined, T);

    await eventually('the user-wide revocation to reach the guard', async () =>
      everyStatusIs(await onAll('/me', older), 401),
    );
    const allRevoked = onEvery(invalidToken('all sessions of the user were revoked'));
    expect(await onAll('/me', older)).toEqual(allRevoked);
    expect(await onAll('/me', atT)).toEqual(allRevoked);
    // A session signed in after T (iat > T), in a session the event never named.
    const later = bearer(await token(user, 'sid-later', { iat: now + 1, exp: now + 301 }));
    expect(await onAll('/me', later)).toEqual(onEvery(ok(user, 'sid-later')));
    expect(await onAll('/me', bystanderToken)).toEqual(onEvery(ok(bystander, 'sid-b')));
  });

  it('answers a token without the required role with 403 insufficient_scope', async () => {
    const user = uniqueName('user');
    const noRoles = bearer(await token(user, uniqueName('sid')));
    const userRole = bearer(await token(user, uniqueName('sid'), { roles: ['user'] }));
    const adminRole = bearer(await token(user, uniqueName('sid'), { roles: ['user', 'admin'] }));
    const forbidden = onEvery({
      status: 403,
      wwwAuthenticate: 'Bearer error="insufficient_scope", error_description="requires role admin"',
      body: { error: 'insufficient_scope', error_description: 'requires role admin' },
    });

    expect(await onAll('/admin', noRoles)).toEqual(forbidden);
    expect(await onAll('/admin', userRole)).toEqual(forbidden);
    expect(await onAll('/admin', adminRole)).toEqual(
      onEvery({
        status: 200,
        wwwAuthenticate: null,
        body: { sub: user, roles: ['user', 'admin'] },
      }),
    );
    // The role is only required where it was asked for.
    expect(everyStatusIs(await onAll('/me', noRoles), 200)).toBe(true);
    expect(everyStatusIs(await onAll('/me', userRole), 200)).toBe(true);
  });

  it('answers a request without a bearer token with 401 and a Bearer challenge', async () => {
    // RFC 6750 §3.1: without any credentials the challenge carries no error code.
    for (const authorization of [undefined, 'Basic dXNlcjpwYXNz', 'Bearer']) {
      for (const path of ['/me', '/admin']) {
        const answers = await onAll(path, authorization);
        expect(answers.node.status).toBe(401);
        expect(answers.node.wwwAuthenticate).toBe('Bearer');
        expect(answers.express).toEqual(answers.node);
        expect(answers.fastify).toEqual(answers.node);
      }
    }
  });

  describe('forged and malformed tokens: 401 invalid_token, and the servers go on serving', () => {
    const user = 'victim';
    const sid = 'victim-session';

    /** [what, Authorization header, expected error_description] */
    async function forgeries(): Promise<[string, string, string][]> {
      const genuine = await token(user, sid);
      const [header, payload, signature] = genuine.split('.') as [string, string, string];
      const now = nowSeconds();
      const good = claims(user, sid);

      const hs256 = (secret: Buffer | string) => {
        const input = `${json({ alg: 'HS256', kid: KID, typ: 'at+jwt' })}.${json({ ...good, sub: 'admin' })}`;
        return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
      };
      const { kty, crv, x } = publicJwk;
      const pem = createPublicKey({ key: { kty, crv, x }, format: 'jwk' }).export({
        type: 'spki',
        format: 'pem',
      });
      const withoutSid = { ...good };
      delete withoutSid.sid;
      const impostorEs256 = await generateKeyPair('ES256');
      const impostorEd25519 = await generateKeyPair('Ed25519');
      const signed = JSON.parse(Buffer.from(payload, 'base64url').toString()) as JWTPayload;
      const tampered = `${header}.${json({ ...signed, sub: 'admin' })}.${signature}`;
      const huge = await sign({ ...good, padding: 'x'.repeat(10_240) });

      return [
        [
          'alg "none"',
          bearer(`${json({ alg: 'none', kid: KID, typ: 'at+jwt' })}.${payload}.`),
          'algorithm not allowed',
        ],
        [
          'HS256 keyed with the raw public key',
          bearer(hs256(Buffer.from(publicJwk.x!, 'base64url'))),
          'algorithm not allowed',
        ],
        [
          'HS256 keyed with the public JWK',
          bearer(hs256(JSON.stringify(publicJwk))),
          'algorithm not allowed',
        ],
        ['HS256 keyed with the public key PEM', bearer(hs256(pem)), 'algorithm not allowed'],
        ['an unknown kid', bearer(await sign(good, { kid: 'not-published' })), 'unknown key'],
        [
          'a kid with path characters',
          bearer(await sign(good, { kid: '../../etc/passwd' })),
          'unknown key',
        ],
        [
          'a kid that is a URL',
          bearer(await sign(good, { kid: 'http://127.0.0.1:1/jwks.json' })),
          'unknown key',
        ],
        [
          'expired beyond the clock tolerance',
          bearer(await sign({ ...good, iat: now - 120, exp: now - 60 })),
          'expired',
        ],
        ['a future nbf', bearer(await sign({ ...good, nbf: now + 60 })), 'not yet valid'],
        [
          'a future iat',
          bearer(await sign({ ...good, iat: now + 60, exp: now + 360 })),
          'not yet valid',
        ],
        [
          'another audience',
          bearer(await sign({ ...good, aud: 'some-other-api' })),
          'wrong audience',
        ],
        [
          'another issuer',
          bearer(await sign({ ...good, iss: 'https://evil.example.test' })),
          'wrong issuer',
        ],
        ['a tampered payload (another sub, same signature)', bearer(tampered), 'bad signature'],
        [
          'another Ed25519 key claiming the published kid',
          bearer(await sign(good, { key: impostorEd25519.privateKey })),
          'bad signature',
        ],
        [
          'an ES256 token by an unpublished key with the Ed25519 kid',
          bearer(await sign(good, { alg: 'ES256', key: impostorEs256.privateKey })),
          'algorithm not allowed',
        ],
        ['a 10 KB token', bearer(huge), 'malformed'],
        ['three base64url parts of garbage', bearer('abc.def.ghi'), 'malformed'],
        [
          'a header that is not JSON',
          bearer(`${base64url.encode('{not json')}.${payload}.${signature}`),
          'malformed',
        ],
        ['wrong typ ("JWT")', bearer(await sign(good, { typ: 'JWT' })), 'wrong type'],
        ['missing sid', bearer(await sign(withoutSid)), 'missing claim'],
        ['a non-string sid', bearer(await sign({ ...good, sid: 7 })), 'malformed'],
        ['non-base64 garbage', 'Bearer !!not*a$token%%', 'malformed'],
        ['two tokens in one header', `${bearer(genuine)} ${genuine}`, 'malformed'],
      ];
    }

    it('rejects each forgery with 401 and the reason, on all three servers', async () => {
      const cases = await forgeries();
      for (const [what, authorization, reason] of cases) {
        const answers = await onAll('/me', authorization);
        // `what` first, so a failure names the forgery.
        expect([what, answers]).toEqual([what, onEvery(invalidToken(reason))]);
      }
      // The JWKS was only ever fetched at its own path: no kid reached a URL.
      expect(new Set(jwksRequests)).toEqual(new Set(['/jwks.json']));
    });

    it('goes on serving valid tokens after the forgeries', async () => {
      const genuine = bearer(await token(user, sid));
      expect(await onAll('/me', genuine)).toEqual(onEvery(ok(user, sid)));
    });
  });
});
