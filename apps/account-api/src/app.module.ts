import { Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { validateEnv } from '@app/config';
import { KafkaModule, KafkaReadiness } from '@app/kafka';
import { ObservabilityModule } from '@app/observability';
import { accountApiEnv } from './config';

/** Example API (a user profile) that enforces revocations received through Kafka. */
@Module({
  imports: [
    ConfigModule.forRoot({
      isGlobal: true,
      ignoreEnvFile: true,
      validate: validateEnv(accountApiEnv),
    }),
    KafkaModule.fromEnv('account-api'),
    ObservabilityModule.forRoot({ serviceName: 'account-api', readiness: [KafkaReadiness] }),
  ],
})
export class AppModule {}
