import 'reflect-metadata';
import { optional } from '@app/config';
import { exitOnStartupFailure, METRICS_REGISTRY, runHttpApp } from '@app/observability';
import { REDIS, type RedisClient } from '@app/redis';
import { RevocationGuard } from '@app/revocation-guard';
import { ConfigService } from '@nestjs/config';
import { Counter, Gauge, type Registry } from 'prom-client';
import { AppModule } from './app.module';
import type { GatewayEnv } from './config';
import { PhantomCache } from './phantom-cache';
import { OidcProvider, oidcSettings } from './oidc-login';
import { gatewayRoutes } from './routes';
import { SessionClient } from './session-client';
import { TokenStore } from './token-store';

runHttpApp(AppModule, 'gateway', (app) => {
  const config = app.get<ConfigService<GatewayEnv, true>>(ConfigService);
  const env = <K extends keyof GatewayEnv>(key: K) => config.get(key, { infer: true });
  const routes = gatewayRoutes({
    env: {
      GATEWAY_UPSTREAMS: env('GATEWAY_UPSTREAMS'),
      GATEWAY_UPSTREAM_COOLOFF_MS: env('GATEWAY_UPSTREAM_COOLOFF_MS'),
      GATEWAY_UPSTREAM_TIMEOUT_MS: env('GATEWAY_UPSTREAM_TIMEOUT_MS'),
      GATEWAY_ALLOWED_ORIGINS: env('GATEWAY_ALLOWED_ORIGINS'),
      GATEWAY_SESSION_TTL_SECONDS: env('GATEWAY_SESSION_TTL_SECONDS'),
      GATEWAY_REMEMBER_TTL_SECONDS: env('GATEWAY_REMEMBER_TTL_SECONDS'),
      GATEWAY_REFRESH_AHEAD_SECONDS: env('GATEWAY_REFRESH_AHEAD_SECONDS'),
      GATEWAY_CLIENT_ID: env('GATEWAY_CLIENT_ID'),
      GATEWAY_CLIENT_SECRET: env('GATEWAY_CLIENT_SECRET'),
      GATEWAY_TEST_HOLD_INTROSPECTION_MS: env('GATEWAY_TEST_HOLD_INTROSPECTION_MS'),
    },
    store: new TokenStore(app.get<RedisClient>(REDIS), env('GATEWAY_KEY_PREFIX')),
    oidc: {
      provider: ((settings) => settings && new OidcProvider(settings))(
        oidcSettings({
          GATEWAY_OIDC_ISSUER: optional(env('GATEWAY_OIDC_ISSUER')),
          GATEWAY_OIDC_CLIENT_ID: optional(env('GATEWAY_OIDC_CLIENT_ID')),
          GATEWAY_OIDC_CLIENT_SECRET: optional(env('GATEWAY_OIDC_CLIENT_SECRET')),
          GATEWAY_OIDC_PROVIDER_NAME: optional(env('GATEWAY_OIDC_PROVIDER_NAME')),
          GATEWAY_OIDC_SCOPES: env('GATEWAY_OIDC_SCOPES'),
        }),
      ),
      redis: app.get<RedisClient>(REDIS),
      prefix: env('GATEWAY_KEY_PREFIX'),
    },
    sessions: new SessionClient(
      env('GATEWAY_SESSION_SERVICE_URL'),
      env('GATEWAY_SESSION_SERVICE_TIMEOUT_MS'),
    ),
    guard: app.get(RevocationGuard),
    phantom: new PhantomCache(env('GATEWAY_PHANTOM_CACHE_SIZE')),
    introspections: new Counter({
      name: 'gateway_introspections_total',
      help: 'calls to the session service /oauth/introspect exchanging an opaque token, by outcome',
      labelNames: ['outcome'] as const,
      registers: [app.get<Registry>(METRICS_REGISTRY)],
    }),
    upstreamFailures: new Counter({
      name: 'gateway_upstream_failures_total',
      help: 'connections to an upstream instance that failed (refused, reset, timed out) before an answer, by service',
      labelNames: ['service'] as const,
      registers: [app.get<Registry>(METRICS_REGISTRY)],
    }),
    events: {
      keepAliveMs: env('GATEWAY_EVENTS_KEEPALIVE_MS'),
      bufferSize: env('GATEWAY_EVENTS_BUFFER'),
      subscribers: new Gauge({
        name: 'gateway_event_subscribers',
        help: 'open GET /bff/events streams (admin consoles following revocations)',
        registers: [app.get<Registry>(METRICS_REGISTRY)],
      }),
      droppedClients: new Counter({
        name: 'gateway_event_clients_dropped_total',
        help: 'GET /bff/events streams closed because their client fell more than GATEWAY_EVENTS_BUFFER events behind',
        registers: [app.get<Registry>(METRICS_REGISTRY)],
      }),
    },
  });
  void app.register(routes);
}).catch(exitOnStartupFailure);
