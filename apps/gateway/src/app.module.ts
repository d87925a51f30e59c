import { configFromEnv } from '@app/config/nest';
import { METRICS_REGISTRY, ObservabilityModule } from '@app/observability';
import { RedisModule, RedisReadiness } from '@app/redis';
import { RevocationGuardModule, RevocationReadiness } from '@app/revocation-guard/nest';
import { Module } from '@nestjs/common';
import { gatewayEnv } from './config';

/**
 * The gateway in front of the APIs for browsers: a token handler keeping each cookie session's
 * tokens in Redis, and a proxy to the configured upstreams that refuses revoked sessions from
 * its own revocation view (the guard's consumer). Its routes are plain Fastify routes
 * (see routes.ts); Nest brings configuration, health, metrics and the guard's lifecycle.
 */
@Module({
  imports: [
    configFromEnv(gatewayEnv),
    RedisModule.fromEnv(),
    ObservabilityModule.forRoot({
      serviceName: 'gateway',
      readiness: [RevocationReadiness, RedisReadiness],
    }),
    RevocationGuardModule.fromEnv('gateway', { metricsRegistry: METRICS_REGISTRY }),
  ],
})
export class AppModule {}
