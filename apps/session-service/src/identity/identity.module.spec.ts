import { type DynamicModule, Module } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { Test } from '@nestjs/testing';
import type { IdentityEnv } from './identity.env';
import { IdentityModule } from './identity.module';
import { OidcVerifier } from './oidc-verifier';
import { UserDirectory } from './user-directory';

@Module({})
class TestConfigModule {
  static with(env: IdentityEnv): DynamicModule {
    const config = { provide: ConfigService, useValue: new ConfigService(env) };
    return { module: TestConfigModule, global: true, providers: [config], exports: [config] };
  }
}

function compile(env: IdentityEnv) {
  return Test.createTestingModule({
    imports: [TestConfigModule.with(env), IdentityModule],
  }).compile();
}

// Hashing the demo users with scrypt at OWASP strength (~0.5 s of CPU each) takes several
// seconds on a loaded 2-core machine, past Jest's 5 s default.
const SCRYPT_TIMEOUT_MS = 30_000;

describe('IdentityModule', () => {
  it(
    'starts with the demo users hashed, outside production',
    async () => {
      const moduleRef = await compile({ NODE_ENV: 'development', SEED_DEMO_USERS: true });
      const users = moduleRef.get(UserDirectory);
      await expect(users.verifyPassword('admin', 'admin-pass')).resolves.toEqual({
        id: 'admin',
        username: 'admin',
        roles: ['user', 'admin'],
      });
      await expect(users.verifyPassword('bob', 'alice-pass')).resolves.toBeUndefined();
      expect(moduleRef.get(OidcVerifier).enabled).toBe(false);
      await moduleRef.close();
    },
    SCRYPT_TIMEOUT_MS,
  );

  it('refuses to start with demo users in production', async () => {
    await expect(compile({ NODE_ENV: 'production', SEED_DEMO_USERS: true })).rejects.toThrow(
      /SEED_DEMO_USERS/,
    );
  });
});
