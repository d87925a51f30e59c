import { Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { IdentityModule } from '../identity/identity.module';
import { TokensModule } from '../tokens/tokens.module';
import { Durability } from './redis/durability';
import { RedisSessionRepository } from './redis/redis-session.repository';
import { SESSION_REPOSITORY } from './session.repository';
import { SessionSweeper } from './session-sweeper';
import { SessionMetrics } from './session.metrics';
import { SessionService } from './session.service';
import { SessionsController } from './sessions.controller';
import { sessionsSettings } from './sessions.settings';

/**
 * Sessions: sign-in under device limits, refresh rotation, every way a session ends with its
 * revocation event, the sweep of expired ones, and "your devices". The store is behind
 * `SESSION_REPOSITORY` (Redis here; an in-memory fake in unit tests). Needs the global
 * ConfigModule and RedisModule.
 */
@Module({
  imports: [ConfigModule.forFeature(sessionsSettings), TokensModule, IdentityModule],
  controllers: [SessionsController],
  providers: [
    Durability,
    { provide: SESSION_REPOSITORY, useClass: RedisSessionRepository },
    SessionService,
    SessionMetrics,
    SessionSweeper,
  ],
  exports: [SessionService],
})
export class SessionsModule {}
