import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Where `npm run build` puts the console: dist/apps/gateway/web (beside this file's src/). */
export const CONSOLE_DIR = join(__dirname, '..', 'web');

/**
 * The web console: `GET /` (its page) and `GET /assets/*` (its script and stylesheet), built
 * by `npm run build` (scripts/build.ts bundles apps/gateway/web with esbuild). Nothing comes
 * from another origin; the page's CSP (security-headers.ts) allows scripts and styles of this
 * origin only. Without a build (sources run by Jest), `/` answers 503 saying so.
 */
export async function consoleRoutes(fastify: FastifyInstance, dir = CONSOLE_DIR): Promise<void> {
  let page: Buffer | undefined;
  try {
    page = readFileSync(join(dir, 'index.html'));
  } catch {
    page = undefined;
  }
  fastify.get('/', (_request, reply) => {
    if (page === undefined)
      return reply.code(503).send({
        error: 'temporarily_unavailable',
        error_description: 'the console is not built: run npm run build',
      });
    return reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('cache-control', 'no-cache')
      .send(page);
  });
  await fastify.register(fastifyStatic, {
    root: join(dir, 'assets'),
    prefix: '/assets/',
    wildcard: true,
    cacheControl: false,
    // Names do not change between builds: revalidate (ETag) rather than cache blindly.
    setHeaders: (reply) => {
      void reply.header('cache-control', 'no-cache');
    },
  });
}
