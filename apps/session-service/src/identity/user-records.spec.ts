import { httpEnv, InvalidEnvironmentError, validateEnv } from '@app/config';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { identityEnv, identityEnvRules, type IdentityEnv } from './identity.env';
import { PasswordHasher } from './password-hasher';
import { isPasswordUser, loadUserRecords } from './user-records';

// The schema as the app composes it.
const validate = validateEnv(httpEnv(3000).extend(identityEnv.shape).superRefine(identityEnvRules));
const hasher = new PasswordHasher();
const FAST = { N: 2 ** 10, r: 8, p: 1 };

function env(overrides: Partial<IdentityEnv>): IdentityEnv {
  return { NODE_ENV: 'development', SEED_DEMO_USERS: false, ...overrides };
}

// Hashing the demo users with scrypt at OWASP strength (~0.5 s of CPU each) takes several
// seconds on a loaded 2-core machine, past Jest's 5 s default.
const SCRYPT_TIMEOUT_MS = 30_000;

describe('identity environment', () => {
  it('defaults to no users, no demo users and no issuers', () => {
    expect(validate({})).toMatchObject({ SEED_DEMO_USERS: false });
    expect(validate({}).OIDC_ISSUERS).toBeUndefined();
  });

  it('refuses SEED_DEMO_USERS in production, naming it', () => {
    expect(() => validate({ NODE_ENV: 'production', SEED_DEMO_USERS: 'true' })).toThrow(
      /SEED_DEMO_USERS: demo users are never loaded when NODE_ENV is production/,
    );
    expect(validate({ NODE_ENV: 'production', SEED_DEMO_USERS: 'false' }).SEED_DEMO_USERS).toBe(
      false,
    );
    expect(validate({ NODE_ENV: 'test', SEED_DEMO_USERS: 'true' }).SEED_DEMO_USERS).toBe(true);
  });

  it('parses OIDC_ISSUERS and names what is wrong in it', () => {
    const issuers = [
      { issuer: 'https://idp.example.com', jwks_uri: 'https://idp.example.com/k', audience: 'a' },
    ];
    expect(validate({ OIDC_ISSUERS: JSON.stringify(issuers) }).OIDC_ISSUERS).toEqual(issuers);
    const bad = (value: unknown) => () => validate({ OIDC_ISSUERS: JSON.stringify(value) });
    expect(bad([{ ...issuers[0], issuer: 'http://idp.example.com' }])).toThrow(
      /OIDC_ISSUERS\.0\.issuer: must be https/,
    );
    expect(bad([{ ...issuers[0], role_claim: 'x' }])).toThrow(/OIDC_ISSUERS/);
    expect(bad([{ ...issuers[0], admin_role: 'x' }])).toThrow(/admin_role needs roles_claim/);
    expect(bad([issuers[0], issuers[0]])).toThrow(/lists an issuer twice/);
    expect(() => validate({ OIDC_ISSUERS: '[' })).toThrow(/OIDC_ISSUERS: is not valid JSON/);
  });
});

describe('loadUserRecords', () => {
  it('refuses demo users in production even when the env rule was not applied', async () => {
    await expect(
      loadUserRecords(env({ NODE_ENV: 'production', SEED_DEMO_USERS: true }), hasher),
    ).rejects.toThrow(/SEED_DEMO_USERS/);
  });

  it(
    'hashes the demo users (at the low demo cost: their passwords are public), ids equal to usernames',
    async () => {
      const users = (await loadUserRecords(env({ SEED_DEMO_USERS: true }), hasher)).filter(
        isPasswordUser,
      );
      expect(users.map(({ id, username, roles }) => ({ id, username, roles }))).toEqual([
        { id: 'alice', username: 'alice', roles: ['user'] },
        { id: 'bob', username: 'bob', roles: ['user'] },
        { id: 'admin', username: 'admin', roles: ['user', 'admin'] },
      ]);
      expect(users[0]!.password_hash).toMatch(/^scrypt\$1024\$8\$1\$/);
      await expect(hasher.verify('alice-pass', users[0]!.password_hash)).resolves.toBe(true);
    },
    SCRYPT_TIMEOUT_MS,
  );

  it('reads USERS and USERS_FILE, and refuses bad entries without echoing hashes', async () => {
    const hash = await hasher.hash('erin-pass', FAST);
    const erin = { id: 'e-1', username: 'erin', password_hash: hash, roles: ['user'] };
    await expect(loadUserRecords(env({ USERS: JSON.stringify([erin]) }), hasher)).resolves.toEqual([
      erin,
    ]);

    const dir = await mkdtemp(join(tmpdir(), 'users-'));
    try {
      const file = join(dir, 'users.json');
      await writeFile(file, JSON.stringify([erin]));
      await expect(loadUserRecords(env({ USERS_FILE: file }), hasher)).resolves.toEqual([erin]);
      await expect(loadUserRecords(env({ USERS_FILE: join(dir, 'none') }), hasher)).rejects.toThrow(
        /USERS_FILE: cannot be read \(ENOENT\)/,
      );
    } finally {
      await rm(dir, { recursive: true });
    }

    const refused = (users: unknown) =>
      loadUserRecords(env({ USERS: JSON.stringify(users) }), hasher);
    await expect(refused([{ ...erin, password_hash: 'plain' }])).rejects.toThrow(
      InvalidEnvironmentError,
    );
    await expect(refused([{ ...erin, roles: 'user' }])).rejects.toThrow(/USERS: 0\.roles/);
    await expect(refused([{ ...erin, id: 'oidc-x' }])).rejects.toThrow(/reserved/);
    await expect(refused([{ id: 'oidc-x', disabled: false }])).rejects.toThrow(
      /USERS: 0\.disabled/,
    );
    await expect(refused([{ id: 'oidc-x', disabled: true }])).resolves.toEqual([
      { id: 'oidc-x', disabled: true },
    ]);
    await expect(refused([{ id: 'u-9', disabled: true }])).rejects.toThrow(/USERS: 0\.username/);
    await expect(refused([erin, { ...erin, id: 'e-2' }])).rejects.toThrow(
      /username "erin" appears twice/,
    );
    await expect(
      loadUserRecords(
        env({ USERS: JSON.stringify([{ ...erin, username: 'bob' }]), SEED_DEMO_USERS: true }),
        hasher,
      ),
    ).rejects.toThrow(/"bob" appears twice/);
    const error = await refused([{ ...erin, password_hash: `${hash}x` }]).then(
      () => new Error('accepted'),
      (e: unknown) => e as Error,
    );
    expect(error.message).toMatch(/USERS: 0\.password_hash/);
    expect(error.message).not.toContain(hash);
  });
});
