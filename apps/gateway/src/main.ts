import 'reflect-metadata';
import { exitOnStartupFailure, runHttpApp } from '@app/observability';
import { REDIS } from '@app/redis';
import { RevocationGuard } from '@app/revocation-guard';
import { ConfigService } from '@nestjs/config';
import type { Redis } from 'ioredis';
import { AppModule } from './app.module';
import type { GatewayEnv } from './config';
import { gatewayRoutes } from './routes';
import { SessionClient } from './session-client';
import { TokenStore } from './token-store';

runHttpApp(AppModule, 'gateway', (app) => {
  const config = app.get<ConfigService<GatewayEnv, true>>(ConfigService);
  const env = <K extends keyof GatewayEnv>(key: K) => config.get(key, { infer: true });
  const routes = gatewayRoutes({
    env: {
      GATEWAY_UPSTREAMS: env('GATEWAY_UPSTREAMS'),
      GATEWAY_ALLOWED_ORIGINS: env('GATEWAY_ALLOWED_ORIGINS'),
      GATEWAY_SESSION_TTL_SECONDS: env('GATEWAY_SESSION_TTL_SECONDS'),
      GATEWAY_REMEMBER_TTL_SECONDS: env('GATEWAY_REMEMBER_TTL_SECONDS'),
      GATEWAY_REFRESH_AHEAD_SECONDS: env('GATEWAY_REFRESH_AHEAD_SECONDS'),
    },
    store: new TokenStore(app.get<Redis>(REDIS), env('GATEWAY_KEY_PREFIX')),
    sessions: new SessionClient(env('GATEWAY_SESSION_SERVICE_URL')),
    guard: app.get(RevocationGuard),
  });
  void app.register(routes);
}).catch(exitOnStartupFailure);
