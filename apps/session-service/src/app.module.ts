import { Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { validateEnv } from '@app/config';
import { ObservabilityModule } from '@app/observability';
import { RedisModule, RedisReadiness } from '@app/redis';
import { sessionServiceEnv } from './config';

/** Signs users in, keeps sessions in Redis, issues tokens; writes every session end to the revocation outbox. */
@Module({
  imports: [
    ConfigModule.forRoot({
      isGlobal: true,
      ignoreEnvFile: true,
      validate: validateEnv(sessionServiceEnv),
    }),
    RedisModule.fromEnv(),
    ObservabilityModule.forRoot({ serviceName: 'session-service', readiness: [RedisReadiness] }),
  ],
})
export class AppModule {}
