import { collectDefaultMetrics, Registry } from 'prom-client';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Accounts } from './accounts';
import { devIdpEnv, REFUSED_IN_PRODUCTION } from './config';
import { interactionRoutes } from './interactions';
import { createProvider } from './provider';
import { validateEnv } from '@app/config';

const log = (level: string, message: string, extra: Record<string, unknown> = {}) =>
  process.stdout.write(
    `${JSON.stringify({ level, pid: process.pid, timestamp: Date.now(), message, context: 'dev-idp', ...extra })}\n`,
  );

async function main(): Promise<void> {
  if (process.env.NODE_ENV === 'production') {
    process.stderr.write(`dev-idp: refusing to start: ${REFUSED_IN_PRODUCTION}\n`);
    process.exit(1);
  }
  const env = validateEnv(devIdpEnv)(process.env);
  const accounts = await Accounts.demo(env.NODE_ENV);
  const provider = await createProvider({
    issuer: env.DEV_IDP_ISSUER,
    clients: env.DEV_IDP_CLIENTS,
    accounts,
    sessionTtlSeconds: env.DEV_IDP_SESSION_TTL_SECONDS,
  });
  provider.on('server_error', (_ctx, error) =>
    log('error', 'provider error', { error: String((error as Error).stack ?? error) }),
  );
  provider.on('backchannel.success', (_ctx, client, accountId, sid) =>
    log('log', 'back-channel logout delivered', {
      client_id: (client as { clientId: string }).clientId,
      sub: accountId,
      sid,
    }),
  );
  provider.on('backchannel.error', (_ctx, error, client, accountId, sid) =>
    log('warn', 'back-channel logout failed', {
      client_id: (client as { clientId: string }).clientId,
      sub: accountId,
      sid,
      error: (error as Error).message,
    }),
  );

  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const handleProvider = provider.callback();
  const interactions = interactionRoutes(provider, accounts);

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (req.method === 'GET' && (path === '/health/live' || path === '/health/ready')) {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify({ status: 'ok' }));
      return;
    }
    if (req.method === 'GET' && path === '/metrics') {
      void registry.metrics().then((text) => {
        res.writeHead(200, { 'content-type': registry.contentType });
        res.end(text);
      });
      return;
    }
    if (path.startsWith('/interaction/')) {
      interactions(req, res, path).catch((error: unknown) => {
        log('error', 'interaction failed', { error: String((error as Error).stack ?? error) });
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end('interaction failed');
      });
      return;
    }
    handleProvider(req, res);
  });
  server.listen(env.HTTP_PORT, env.HTTP_HOST, () =>
    log('log', 'dev OpenID provider listening', {
      issuer: env.DEV_IDP_ISSUER,
      discovery: `${env.DEV_IDP_ISSUER}/.well-known/openid-configuration`,
      clients: env.DEV_IDP_CLIENTS.map((c) => c.client_id),
      users: accounts.usernames,
      address: `${env.HTTP_HOST}:${env.HTTP_PORT}`,
    }),
  );
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`dev-idp: could not start: ${(error as Error).message}\n`);
  process.exit(1);
});
