import { configFromEnv } from '@app/config/nest';
import { Module } from '@nestjs/common';
import { METRICS_REGISTRY, ObservabilityModule } from '@app/observability';
import {
  MeController,
  RevocationGuardModule,
  RevocationReadiness,
} from '@app/revocation-guard/nest';
import { ProfileController } from './profile/profile.controller';
import { accountApiEnv } from './config';

/**
 * Example API (a user profile) that enforces revocations received through Kafka: every
 * route needs a valid, unrevoked access token unless marked `@Public()`.
 */
@Module({
  imports: [
    configFromEnv(accountApiEnv),
    ObservabilityModule.forRoot({ serviceName: 'account-api', readiness: [RevocationReadiness] }),
    RevocationGuardModule.fromEnv('account-api', { metricsRegistry: METRICS_REGISTRY }),
  ],
  controllers: [MeController, ProfileController],
})
export class AppModule {}
