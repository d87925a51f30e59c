import { Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { validateEnv } from '@app/config';
import { KafkaModule, KafkaReadiness } from '@app/kafka';
import { ObservabilityModule } from '@app/observability';
import { contentApiEnv } from './config';

/** Example API (paywalled articles) that enforces revocations received through Kafka. */
@Module({
  imports: [
    ConfigModule.forRoot({
      isGlobal: true,
      ignoreEnvFile: true,
      validate: validateEnv(contentApiEnv),
    }),
    KafkaModule.fromEnv('content-api'),
    ObservabilityModule.forRoot({ serviceName: 'content-api', readiness: [KafkaReadiness] }),
  ],
})
export class AppModule {}
