import { Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { APP_FILTER, APP_GUARD, APP_PIPE } from '@nestjs/core';
import { validateEnv } from '@app/config';
import { ObservabilityModule } from '@app/observability';
import { RedisModule, RedisReadiness } from '@app/redis';
import { AdminController } from './admin/admin.controller';
import { AuthController } from './auth/auth.controller';
import { BearerGuard } from './auth/bearer.guard';
import { sessionServiceEnv } from './config';
import { HttpErrorsFilter } from './http/http-errors.filter';
import { validationPipe } from './http/validation';
import { IdentityModule } from './identity/identity.module';
import { OAuthController } from './oauth/oauth.controller';
import { SignInThrottle } from './rate-limit/sign-in-throttle';
import { Durability } from './sessions/durability';
import { SessionSweeper } from './sessions/session-sweeper';
import { SessionMetrics } from './sessions/session.metrics';
import { SessionService } from './sessions/session.service';
import { SessionStore } from './sessions/session.store';
import { SessionsController } from './sessions/sessions.controller';
import { TokensModule } from './tokens/tokens.module';

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
    TokensModule,
    IdentityModule,
  ],
  controllers: [AuthController, SessionsController, AdminController, OAuthController],
  providers: [
    SessionStore,
    Durability,
    SessionService,
    SessionMetrics,
    SessionSweeper,
    SignInThrottle,
    { provide: APP_GUARD, useClass: BearerGuard },
    { provide: APP_PIPE, useFactory: validationPipe },
    { provide: APP_FILTER, useClass: HttpErrorsFilter },
  ],
})
export class AppModule {}
