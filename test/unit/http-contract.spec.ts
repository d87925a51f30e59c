import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { INestApplication, Type } from '@nestjs/common';
import { ModulesContainer, Reflector } from '@nestjs/core';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import { Test } from '@nestjs/testing';
import { IS_PUBLIC, REQUIRED_ROLES } from '@app/auth-metadata';
import { fastifyAdapter } from '@app/observability';
import { REDIS } from '@app/redis';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';

// docs/HTTP-CONTRACT.md's table of served routes is the apps' HTTP contract: each app's
// routes (method and path), who may call them and their success status must be the table's,
// no more and no fewer. The apps are built in-process without listening or starting (no
// Redis, no Kafka: lifecycle hooks never run, the Redis client is one that never connects).

const root = join(__dirname, '..', '..');
const CHECKED_HEADER = ['Method', 'Path', 'App', 'Auth', 'Success'];
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'] as const;

interface AppUnderTest {
  module: () => Promise<Type>;
  /** The document the app serves, or for apps serving none, the one Nest's Swagger builds. */
  document: (app: INestApplication) => Promise<OpenAPIObject>;
  /** Plain Fastify routes the app registers besides Nest's (`METHOD /path`): their method and
   * path are checked, their Auth and Success by the app's integration tests. */
  fastifyRoutes?: () => Promise<string[]>;
}

const builtDocument = (app: INestApplication) =>
  Promise.resolve(SwaggerModule.createDocument(app, new DocumentBuilder().build()));

const APPS: Record<string, AppUnderTest> = {
  'session-service': {
    module: async () => (await import('../../apps/session-service/src/app.module.js')).AppModule,
    document: async (app) =>
      (await import('../../apps/session-service/src/http/openapi.js')).openApiDocument(app),
  },
  'revocation-publisher': {
    module: async () =>
      (await import('../../apps/revocation-publisher/src/app.module.js')).AppModule,
    document: builtDocument,
  },
  'content-api': {
    module: async () => (await import('../../apps/content-api/src/app.module.js')).AppModule,
    document: builtDocument,
  },
  'account-api': {
    module: async () => (await import('../../apps/account-api/src/app.module.js')).AppModule,
    document: builtDocument,
  },
  gateway: {
    module: async () => (await import('../../apps/gateway/src/app.module.js')).AppModule,
    document: builtDocument,
    fastifyRoutes: gatewayRoutes,
  },
  'ssf-transmitter': {
    module: async () => (await import('../../apps/ssf-transmitter/src/app.module.js')).AppModule,
    document: builtDocument,
    fastifyRoutes: ssfRoutes,
  },
};

/** Every method and path a Fastify plugin registers, as the table writes them. */
async function fastifyRoutesOf(
  plugin: (fastify: FastifyInstance) => Promise<void>,
): Promise<string[]> {
  const { default: Fastify } = await import('fastify');
  const fastify = Fastify();
  const methods = new Map<string, string[]>();
  fastify.addHook('onRoute', ({ method, url }) => {
    methods.set(url, [...(methods.get(url) ?? []), ...[method].flat()]);
  });
  await fastify.register(plugin);
  await fastify.ready();
  await fastify.close();
  // `fastify.all` is every method Fastify routes: the table's ANY.
  const any = ['DELETE', 'GET', 'PATCH', 'POST', 'PUT', 'OPTIONS'];
  return [...methods].flatMap(([route, list]) => {
    // Fastify writes a literal colon as `::`.
    const url = normalisePath(route).replaceAll('::', ':');
    return any.every((method) => list.includes(method))
      ? [`ANY ${url}`]
      : list.filter((method) => method !== 'HEAD').map((method) => `${method} ${url}`);
  });
}

/** The SSF transmitter's discovery, JWKS, management and poll routes. */
async function ssfRoutes(): Promise<string[]> {
  const { ssfRoutes: plugin } = await import('../../apps/ssf-transmitter/src/routes.js');
  // Only kept by the routes, never called while they are registered.
  return fastifyRoutesOf(plugin({} as Parameters<typeof plugin>[0]));
}

/** The gateway's token handler and proxy routes, registered on a Fastify of their own. */
async function gatewayRoutes(): Promise<string[]> {
  const { gatewayRoutes: plugin } = await import('../../apps/gateway/src/routes.js');
  const { gatewayEnv } = await import('../../apps/gateway/src/config.js');
  const { TokenStore } = await import('../../apps/gateway/src/token-store.js');
  const { SessionClient } = await import('../../apps/gateway/src/session-client.js');
  const { PhantomCache } = await import('../../apps/gateway/src/phantom-cache.js');
  const env = gatewayEnv.parse({ NODE_ENV: 'test' });
  const redis = new Redis({ lazyConnect: true, enableOfflineQueue: false });
  try {
    return await fastifyRoutesOf(
      plugin({
        env,
        store: new TokenStore(redis, env.GATEWAY_KEY_PREFIX),
        sessions: new SessionClient(env.GATEWAY_SESSION_SERVICE_URL),
        // Only kept by the routes, never called while they are registered.
        guard: {} as Parameters<typeof plugin>[0]['guard'],
        phantom: new PhantomCache(10),
        introspections: { inc: () => undefined },
        upstreamFailures: { inc: () => undefined },
      }),
    );
  } finally {
    redis.disconnect();
  }
}

/** A markdown table row's cells; `\|` is a pipe inside a cell. */
function cells(line: string): string[] {
  return line
    .trim()
    .replace(/^\||\|$/g, '')
    .split(/(?<!\\)\|/)
    .map((cell) => cell.trim());
}

/** `:name` (Nest, Fastify, the doc) and `{name}` (OpenAPI) are the same parameter: a whole
 * path segment (`/ssf/subjects:add` has none). */
const normalisePath = (path: string) => path.replace(/\/:([A-Za-z0-9_]+)/g, '/{$1}');

/** What the guards see: public (no access token), or a bearer token with these roles. */
function authFromDoc(auth: string): string {
  if (['none', 'ops', 'client'].includes(auth)) return 'public';
  // The gateway's own credentials (its Fastify routes: not checked against metadata).
  if (['csrf', 'cookie', 'cookie admin', 'cookie csrf or bearer', 'ssf client'].includes(auth))
    return auth;
  if (auth === 'bearer') return 'bearer';
  const roles = /^bearer (.+)$/.exec(auth)?.[1];
  if (roles) return `bearer ${roles.split(/\s+/).sort().join(' ')}`;
  throw new Error(`unknown Auth "${auth}" in docs/HTTP-CONTRACT.md`);
}

/** Every checked row of the doc, one entry per app: `APP METHOD /path`, and its auth and status. */
function contractRoutes(markdown: string): Map<string, Map<string, string>> {
  const routes = new Map<string, Map<string, string>>();
  let header: string[] | undefined;
  for (const line of markdown.split('\n')) {
    if (!line.startsWith('|')) {
      header = undefined;
      continue;
    }
    const row = cells(line);
    if (!header) {
      header = row;
      continue;
    }
    if (row.every((cell) => /^:?-+:?$/.test(cell))) continue;
    if (CHECKED_HEADER.some((name, i) => header?.[i] !== name)) continue;
    const [method = '', path = '', apps = '', auth = '', success = ''] = row;
    for (const app of apps.split(',').map((name) => name.trim())) {
      const forApp = routes.get(app) ?? new Map<string, string>();
      const route = `${method.toUpperCase()} ${normalisePath(path.replace(/`/g, ''))}`;
      if (forApp.has(route)) throw new Error(`${app} ${route} is twice in the table`);
      forApp.set(route, `auth ${authFromDoc(auth)}, success ${success}`);
      routes.set(app, forApp);
    }
  }
  return routes;
}

/** The app's routes from its OpenAPI document, each with what its guard metadata says. */
function servedRoutes(app: INestApplication, document: OpenAPIObject): Map<string, string> {
  const controllers = new Map<string, Type>();
  for (const module of app.get(ModulesContainer).values())
    for (const wrapper of module.controllers.values())
      if (wrapper.metatype) controllers.set(wrapper.metatype.name, wrapper.metatype as Type);
  const reflector = new Reflector();
  const routes = new Map<string, string>();
  for (const [path, item] of Object.entries(document.paths)) {
    for (const method of METHODS) {
      const operation = item[method];
      if (!operation) continue;
      // Nest's Swagger names each operation `<Controller>_<handler>`.
      const operationId = operation.operationId ?? '';
      const controllerName = operationId.slice(0, operationId.indexOf('_'));
      const handlerName = operationId.slice(operationId.indexOf('_') + 1);
      const controller = controllers.get(controllerName);
      const handler = (controller?.prototype as Record<string, unknown> | undefined)?.[handlerName];
      if (!controller || typeof handler !== 'function')
        throw new Error(`no handler for operation "${operationId}" (${method} ${path})`);
      const targets = [handler, controller];
      const isPublic = reflector.getAllAndOverride<boolean | undefined>(IS_PUBLIC, targets);
      const roles = reflector.getAllAndOverride<string[] | undefined>(REQUIRED_ROLES, targets);
      const auth = isPublic ? 'public' : ['bearer', ...[...(roles ?? [])].sort()].join(' ');
      const success = Object.keys(operation.responses)
        .filter((status) => /^2\d\d$/.test(status))
        .join(', ');
      routes.set(`${method.toUpperCase()} ${path}`, `auth ${auth}, success ${success}`);
    }
  }
  return routes;
}

const sorted = (routes: Map<string, string> | undefined) =>
  [...(routes ?? new Map<string, string>()).entries()].sort(([a], [b]) => a.localeCompare(b));

describe('docs/HTTP-CONTRACT.md', () => {
  const contract = contractRoutes(readFileSync(join(root, 'docs', 'HTTP-CONTRACT.md'), 'utf8'));

  it('names only apps that exist, each with routes', () => {
    expect([...contract.keys()].sort()).toEqual(Object.keys(APPS).sort());
  });

  describe.each(Object.entries(APPS))('%s', (name, target) => {
    let app: INestApplication;
    let served: Map<string, string>;
    const environment = { ...process.env };

    beforeAll(async () => {
      // Configuration is validated when an app module is imported: defaults, outside production.
      Object.assign(process.env, { NODE_ENV: 'test', LOG_LEVEL: 'warn' });
      const moduleRef = await Test.createTestingModule({ imports: [await target.module()] })
        .overrideProvider(REDIS)
        .useValue(new Redis({ lazyConnect: true, enableOfflineQueue: false }))
        .compile();
      app = moduleRef.createNestApplication<NestFastifyApplication>(fastifyAdapter(), {
        logger: ['error'],
      });
      served = servedRoutes(app, await target.document(app));
      const table = contract.get(name);
      for (const route of (await target.fastifyRoutes?.()) ?? [])
        served.set(route, table?.get(route) ?? 'not in the table');
    });

    afterAll(async () => {
      await app.close();
      for (const key of Object.keys(process.env))
        if (!(key in environment)) Reflect.deleteProperty(process.env, key);
      Object.assign(process.env, environment);
    });

    it('serves exactly the routes of the table (method and path)', () => {
      expect([...served.keys()].sort()).toEqual(sorted(contract.get(name)).map(([route]) => route));
    });

    it('guards and answers each route as the table says (Auth, Success)', () => {
      expect(sorted(served)).toEqual(sorted(contract.get(name)));
    });
  });
});
