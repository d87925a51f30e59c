import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { unwatchFile, watchFile } from 'node:fs';
import { readIdentityEnv, type IdentityEnv } from './identity.env';
import { UserDirectory } from './user-directory';
import { combineUsers, configuredUsers, DEMO_USER_RECORDS, type UserRecord } from './user-records';

/**
 * Reads USERS_FILE again whenever it changes, so removing, disabling or demoting a user needs
 * no restart: the directory is consulted at every refresh. A file that no longer parses is
 * reported and ignored; the users from before stay in force.
 */
@Injectable()
export class UsersFileWatcher implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Identity');
  private readonly env: IdentityEnv;
  private readonly intervalMs: number;
  private reloading = Promise.resolve();

  constructor(
    private readonly directory: UserDirectory,
    @Inject(DEMO_USER_RECORDS) private readonly demo: readonly UserRecord[],
    config: ConfigService<IdentityEnv & { USERS_FILE_RELOAD_SECONDS: number }, true>,
  ) {
    this.env = readIdentityEnv(config);
    this.intervalMs = config.get('USERS_FILE_RELOAD_SECONDS', { infer: true }) * 1000;
  }

  onApplicationBootstrap(): void {
    const file = this.env.USERS_FILE;
    if (file === undefined) return;
    watchFile(file, { interval: this.intervalMs, persistent: false }, (current, previous) => {
      if (current.mtimeMs === previous.mtimeMs && current.size === previous.size) return;
      this.reloading = this.reloading.then(() => this.reload());
    });
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.env.USERS_FILE !== undefined) unwatchFile(this.env.USERS_FILE);
    await this.reloading;
  }

  private async reload(): Promise<void> {
    try {
      const users = combineUsers(this.env, await configuredUsers(this.env), [...this.demo]);
      this.directory.replace(users);
      this.logger.log(`USERS_FILE changed: ${users.length} user(s) now`);
    } catch (error) {
      this.logger.error(
        `USERS_FILE changed but is refused, keeping the users from before: ${(error as Error).message}`,
      );
    }
  }
}
