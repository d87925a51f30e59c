import {
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { SessionServiceEnv } from '../config';
import { SessionService } from './session.service';

/**
 * Ends sessions whose idle or absolute deadline passed, with their revocation events, even
 * when nobody uses them again (their access tokens may still be out there for minutes).
 */
@Injectable()
export class SessionSweeper implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(SessionSweeper.name);
  private readonly intervalMs: number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly sessions: SessionService,
    config: ConfigService<SessionServiceEnv, true>,
  ) {
    this.intervalMs = config.get('SESSION_SWEEP_INTERVAL_SECONDS', { infer: true }) * 1000;
  }

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => {
      this.running ??= this.sessions
        .sweepExpired()
        .then((users) => {
          if (users > 0) this.logger.log(`ended expired sessions of ${users} user(s)`);
        })
        .catch((error: unknown) => {
          this.logger.warn(`sweep failed: ${(error as Error).message}`);
        })
        .finally(() => {
          this.running = undefined;
        });
    }, this.intervalMs);
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}
