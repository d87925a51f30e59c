import { configFromEnv } from '@app/config/nest';
import { KafkaModule, KafkaReadiness } from '@app/kafka/nest';
import { ObservabilityModule } from '@app/observability';
import { RedisModule, RedisReadiness } from '@app/redis';
import { Module } from '@nestjs/common';
import { ssfEnv } from './config';
import { Transmitter, TransmitterReadiness } from './transmitter';

/**
 * The SSF transmitter: reads the revocation topic and delivers each revocation to outside
 * receivers as signed SETs (OpenID SSF 1.0 / CAEP 1.0). Its routes are plain Fastify routes
 * (routes.ts); Nest brings configuration, health, metrics, Redis, Kafka and the lifecycle.
 */
@Module({
  imports: [
    configFromEnv(ssfEnv),
    RedisModule.fromEnv(),
    KafkaModule.fromEnv('ssf-transmitter'),
    ObservabilityModule.forRoot({
      serviceName: 'ssf-transmitter',
      readiness: [RedisReadiness, KafkaReadiness, TransmitterReadiness],
    }),
  ],
  providers: [Transmitter, TransmitterReadiness],
})
export class AppModule {}
