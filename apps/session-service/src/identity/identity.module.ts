import { Logger, Module } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { IdentityEnv } from './identity.env';
import { OidcVerifier } from './oidc-verifier';
import { PasswordHasher } from './password-hasher';
import { UserDirectory } from './user-directory';
import { loadUserRecords, USER_RECORDS } from './user-records';

/**
 * Who may sign in: password users (USERS / USERS_FILE, demo users outside production) and
 * trusted OpenID Connect issuers (OIDC_ISSUERS). Needs the global ConfigModule.
 */
@Module({
  providers: [
    PasswordHasher,
    {
      provide: USER_RECORDS,
      inject: [ConfigService, PasswordHasher],
      useFactory: async (config: ConfigService<IdentityEnv, true>, hasher: PasswordHasher) => {
        const env: IdentityEnv = {
          NODE_ENV: config.get('NODE_ENV', { infer: true }),
          USERS: config.get('USERS', { infer: true }),
          USERS_FILE: config.get('USERS_FILE', { infer: true }),
          SEED_DEMO_USERS: config.get('SEED_DEMO_USERS', { infer: true }),
          OIDC_ISSUERS: config.get('OIDC_ISSUERS', { infer: true }),
        };
        const users = await loadUserRecords(env, hasher);
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
    OidcVerifier,
  ],
  exports: [PasswordHasher, UserDirectory, OidcVerifier],
})
export class IdentityModule {}
