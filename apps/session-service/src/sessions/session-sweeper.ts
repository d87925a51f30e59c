import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { PeriodicTask } from '@app/observability';
import { SessionService } from './session.service';
import { sessionsSettings, type SessionsSettings } from './sessions.settings';

/**
 * Ends sessions whose idle or absolute deadline passed, with their revocation events, even
 * when nobody uses them again (their access tokens may still be out there for minutes).
 */
@Injectable()
export class SessionSweeper implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(SessionSweeper.name);
  private readonly ticker: PeriodicTask;

  constructor(
    private readonly sessions: SessionService,
    @Inject(sessionsSettings.KEY) settings: SessionsSettings,
  ) {
    this.ticker = new PeriodicTask(settings.sweepIntervalMs, () => this.sweep());
  }

  onApplicationBootstrap(): void {
    this.ticker.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.ticker.stop();
  }

  private sweep(): Promise<void> {
    return this.sessions
      .sweepExpired()
      .then((users) => {
        if (users > 0) this.logger.log(`ended expired sessions of ${users} user(s)`);
      })
      .catch((error: unknown) => {
        this.logger.warn(`sweep failed: ${(error as Error).message}`);
      });
  }
}
