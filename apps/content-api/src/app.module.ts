import { configFromEnv } from '@app/config/nest';
import { Module } from '@nestjs/common';
import { METRICS_REGISTRY, ObservabilityModule } from '@app/observability';
import {
  MeController,
  RevocationGuardModule,
  RevocationReadiness,
} from '@app/revocation-guard/nest';
import { ArticlesController } from './articles/articles.controller';
import { contentApiEnv } from './config';

/**
 * Example API (paywalled articles) that enforces revocations received through Kafka: every
 * route needs a valid, unrevoked access token unless marked `@Public()`.
 */
@Module({
  imports: [
    configFromEnv(contentApiEnv),
    ObservabilityModule.forRoot({ serviceName: 'content-api', readiness: [RevocationReadiness] }),
    RevocationGuardModule.fromEnv('content-api', { metricsRegistry: METRICS_REGISTRY }),
  ],
  controllers: [MeController, ArticlesController],
})
export class AppModule {}
