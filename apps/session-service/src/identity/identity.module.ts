import { Logger, Module } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { readIdentityEnv, type IdentityEnv } from './identity.env';
import { LogoutTokenVerifier } from './logout-token-verifier';
import { OidcVerifier } from './oidc-verifier';
import { PasswordHasher } from './password-hasher';
import { TrustedIssuers } from './trusted-issuers';
import { UserDirectory } from './user-directory';
import {
  combineUsers,
  configuredUsers,
  DEMO_USER_RECORDS,
  demoUsers,
  USER_RECORDS,
  type UserRecord,
} from './user-records';
import { UsersFileWatcher } from './users-file-watcher';

/**
 * Who may sign in: password users (USERS / USERS_FILE, demo users outside production) and
 * trusted OpenID Connect issuers (OIDC_ISSUERS: ID tokens at sign-in, logout tokens at
 * back-channel logout, both against one key set per issuer). Needs the global ConfigModule.
 */
@Module({
  providers: [
    PasswordHasher,
    {
      provide: DEMO_USER_RECORDS,
      inject: [ConfigService, PasswordHasher],
      useFactory: (config: ConfigService<IdentityEnv, true>, hasher: PasswordHasher) =>
        demoUsers(readIdentityEnv(config), hasher),
    },
    {
      provide: USER_RECORDS,
      inject: [ConfigService, DEMO_USER_RECORDS],
      useFactory: async (config: ConfigService<IdentityEnv, true>, demo: UserRecord[]) => {
        const env = readIdentityEnv(config);
        const users = combineUsers(env, await configuredUsers(env), demo);
        const logger = new Logger('Identity');
        if (env.SEED_DEMO_USERS)
          logger.warn('demo users loaded (SEED_DEMO_USERS): not for production');
        logger.log(
          `${users.length} password user(s), ${env.OIDC_ISSUERS?.length ?? 0} trusted OIDC issuer(s)`,
        );
        return users;
      },
    },
    UserDirectory,
    UsersFileWatcher,
    TrustedIssuers,
    OidcVerifier,
    LogoutTokenVerifier,
  ],
  exports: [PasswordHasher, UserDirectory, OidcVerifier, LogoutTokenVerifier],
})
export class IdentityModule {}
