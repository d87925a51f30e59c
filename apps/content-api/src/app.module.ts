import { Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { validateEnv } from '@app/config';
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
    ConfigModule.forRoot({
      isGlobal: true,
      ignoreEnvFile: true,
      validate: validateEnv(contentApiEnv),
    }),
    ObservabilityModule.forRoot({ serviceName: 'content-api', readiness: [RevocationReadiness] }),
    RevocationGuardModule.fromEnv('content-api', { metricsRegistry: METRICS_REGISTRY }),
  ],
  controllers: [MeController, ArticlesController],
})
export class AppModule {}
