import { Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { validateEnv } from '@app/config';
import { KafkaModule, KafkaReadiness } from '@app/kafka';
import { ObservabilityModule } from '@app/observability';
import { RedisModule, RedisReadiness } from '@app/redis';
import { revocationPublisherEnv } from './config';

/** Relays revocations from the Redis outbox to Kafka, and heartbeats every partition. */
@Module({
  imports: [
    ConfigModule.forRoot({
      isGlobal: true,
      ignoreEnvFile: true,
      validate: validateEnv(revocationPublisherEnv),
    }),
    RedisModule.fromEnv(),
    KafkaModule.fromEnv('revocation-publisher'),
    ObservabilityModule.forRoot({
      serviceName: 'revocation-publisher',
      readiness: [RedisReadiness, KafkaReadiness],
    }),
  ],
})
export class AppModule {}
