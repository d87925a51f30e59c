import {
  ConsoleLogger,
  type INestApplication,
  Logger,
  type LogLevel,
  type Type,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { createHash, timingSafeEqual } from 'node:crypto';
import { trustProxy, type TrustProxy } from '@app/config';

const LEVELS: LogLevel[] = ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'];

/** JSON logs, one object a line, at `level` and more severe. */
export function jsonLogger(serviceName: string, level: LogLevel = 'log'): ConsoleLogger {
  return new ConsoleLogger(serviceName, {
    json: true,
    logLevels: LEVELS.slice(0, LEVELS.indexOf(level) + 1),
  });
}

interface HttpEnv {
  HTTP_HOST: string;
  HTTP_PORT: number;
  LOG_LEVEL: LogLevel;
  NODE_ENV: string;
  OPS_TOKEN?: string;
}

/**
 * Defaults every app's answers carry: these APIs serve JSON to programs, never pages, so
 * nothing may be sniffed, framed, cached by referrers or run as a document. A header a route
 * already set is left alone: the gateway sets its own (helmet, for its pages to come) and
 * passes on those of the upstreams it proxies to.
 */
export function applySecurityHeaders(app: NestFastifyApplication): void {
  app
    .getHttpAdapter()
    .getInstance()
    .addHook('onSend', async (request, reply) => {
      const byDefault = (name: string, value: string) => {
        if (!reply.hasHeader(name)) void reply.header(name, value);
      };
      byDefault('X-Content-Type-Options', 'nosniff');
      byDefault('X-Frame-Options', 'DENY');
      byDefault('Referrer-Policy', 'no-referrer');
      // The OpenAPI page (/docs) is the one HTML page, with its own scripts and styles.
      if (!request.url.startsWith('/docs')) {
        byDefault('Content-Security-Policy', "default-src 'none'; frame-ancestors 'none'");
      }
      byDefault('Cross-Origin-Resource-Policy', 'same-site');
    });
}

/**
 * The Fastify adapter every app runs on. Path parameters may be as long as the longest
 * identifier the apps accept (Fastify's default of 100 characters answers longer ones 414).
 * `trustProxy` (TRUST_PROXY): which proxies' X-Forwarded-For decides `request.ip`.
 */
export function fastifyAdapter({
  trustProxy = false,
}: { trustProxy?: TrustProxy } = {}): FastifyAdapter {
  return new FastifyAdapter({
    routerOptions: { maxParamLength: 256 },
    // A hop count as Fastify's trust function: believe the nearest `n` proxies.
    trustProxy:
      typeof trustProxy === 'number' ? (_: string, hop: number) => hop < trustProxy : trustProxy,
  });
}

/**
 * TRUST_PROXY, read before the app (and its validated configuration) exists, because the
 * adapter needs it first. A bad value is left to the configuration's validation, which
 * refuses to start naming it.
 */
export function trustProxyFromEnv(env: NodeJS.ProcessEnv = process.env): TrustProxy {
  const parsed = trustProxy.safeParse(env.TRUST_PROXY);
  return parsed.success ? parsed.data : false;
}

const OPS_PATHS = /^\/(metrics|docs)(\/|-json|$|\?)/;
const READY_PATH = /^\/health\/ready(\?|$)/;

/**
 * Puts the operations endpoints behind `token` (OPS_TOKEN), when given: /metrics and /docs
 * answer 401 without it; /health/ready answers only its status (what a load balancer needs)
 * and its details with it. Without a token they stay open, as on a developer's machine.
 */
export function restrictOpsEndpoints(app: NestFastifyApplication, token: string | undefined): void {
  if (token === undefined) return;
  const expected = createHash('sha256').update(token).digest();
  const authorized = (header: string | undefined) => {
    const given = /^Bearer (.+)$/i.exec(header ?? '')?.[1];
    return (
      given !== undefined && timingSafeEqual(createHash('sha256').update(given).digest(), expected)
    );
  };
  const fastify = app.getHttpAdapter().getInstance();
  fastify.addHook('onRequest', async (request, reply) => {
    if (OPS_PATHS.test(request.url) && !authorized(request.headers.authorization)) {
      await reply
        .code(401)
        .header('WWW-Authenticate', 'Bearer realm="operations"')
        .header('Cache-Control', 'no-store')
        .send({ error: 'invalid_token', error_description: 'OPS_TOKEN required' });
    }
  });
  fastify.addHook('onSend', async (request, _reply, payload) => {
    if (!READY_PATH.test(request.url) || authorized(request.headers.authorization)) return payload;
    const { status } = JSON.parse(String(payload)) as { status?: string };
    return JSON.stringify({ status });
  });
}

/** Creates a Fastify-backed Nest app with JSON logs and graceful shutdown, without listening. */
export async function createHttpApp(
  module: Type,
  serviceName: string,
): Promise<NestFastifyApplication> {
  const app = await NestFactory.create<NestFastifyApplication>(
    module,
    fastifyAdapter({ trustProxy: trustProxyFromEnv() }),
    {
      logger: jsonLogger(serviceName),
      bufferLogs: true,
    },
  );
  const config = app.get<ConfigService<HttpEnv, true>>(ConfigService);
  app.useLogger(jsonLogger(serviceName, config.get('LOG_LEVEL', { infer: true })));
  app.enableShutdownHooks();
  applySecurityHeaders(app);
  restrictOpsEndpoints(app, config.get('OPS_TOKEN', { infer: true }));
  if (
    config.get('OPS_TOKEN', { infer: true }) === undefined &&
    config.get('NODE_ENV', { infer: true }) === 'production'
  )
    new Logger('Http').warn('OPS_TOKEN is not set: /metrics, /docs and readiness details are open');
  return app;
}

/** Starts `module` as an HTTP service on HTTP_HOST:HTTP_PORT; logs where it listens. */
export async function runHttpApp(
  module: Type,
  serviceName: string,
  configure: (app: NestFastifyApplication) => void = () => undefined,
): Promise<INestApplication> {
  const app = await createHttpApp(module, serviceName);
  configure(app);
  const config = app.get<ConfigService<HttpEnv, true>>(ConfigService);
  const host = config.get('HTTP_HOST', { infer: true });
  const port = config.get('HTTP_PORT', { infer: true });
  await app.listen(port, host);
  new Logger('Http').log(`listening on http://${host}:${port}`);
  return app;
}

/** Last stop of a `main.ts`: says why the app could not start (e.g. a bad variable) and exits 1. */
export function exitOnStartupFailure(error: unknown): never {
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
  process.stderr.write(
    `${JSON.stringify({ level: 'fatal', message: `could not start: ${message}` })}\n`,
  );
  process.exit(1);
}
