import { configFromEnv } from '@app/config/nest';
import { Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { APP_FILTER, APP_GUARD, APP_PIPE } from '@nestjs/core';
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
import { BackchannelLogoutController } from './oidc/backchannel-logout.controller';
import { BackchannelLogout, LogoutTokenReplayCache } from './oidc/backchannel-logout.service';
import { SignInThrottle } from './rate-limit/sign-in-throttle';
import { SessionsModule } from './sessions/sessions.module';
import { throttleSettings } from './sessions/sessions.settings';
import { TokensModule } from './tokens/tokens.module';

/** Signs users in, keeps sessions in Redis, issues tokens; writes every session end to the revocation outbox. */
@Module({
  imports: [
    configFromEnv(sessionServiceEnv),
    RedisModule.fromEnv(),
    ObservabilityModule.forRoot({ serviceName: 'session-service', readiness: [RedisReadiness] }),
    ConfigModule.forFeature(throttleSettings),
    TokensModule,
    IdentityModule,
    SessionsModule,
  ],
  controllers: [AuthController, AdminController, OAuthController, BackchannelLogoutController],
  providers: [
    SignInThrottle,
    LogoutTokenReplayCache,
    BackchannelLogout,
    { provide: APP_GUARD, useClass: BearerGuard },
    { provide: APP_PIPE, useFactory: validationPipe },
    { provide: APP_FILTER, useClass: HttpErrorsFilter },
  ],
})
export class AppModule {}
