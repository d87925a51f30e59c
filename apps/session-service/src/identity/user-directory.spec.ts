import { ConfigService } from '@nestjs/config';
import type { IdentityEnv, OidcIssuerConfig } from './identity.env';
import { PasswordHasher } from './password-hasher';
import { oidcUserId, UserDirectory } from './user-directory';
import type { UserRecord } from './user-records';

const FAST = { N: 2 ** 10, r: 8, p: 1 };
const ISSUER = 'https://idp.example.com';
const issuers: OidcIssuerConfig[] = [
  {
    issuer: ISSUER,
    jwks_uri: `${ISSUER}/jwks`,
    audience: 'us',
    roles_claim: 'groups',
    admin_role: 'ops',
  },
  {
    issuer: 'https://other.example.com',
    jwks_uri: 'https://other.example.com/jwks',
    audience: 'us',
  },
  {
    issuer: 'https://kc.example.com',
    jwks_uri: 'https://kc.example.com/jwks',
    audience: 'us',
    roles_claim: 'realm_access.roles',
    admin_role: 'admin',
  },
];

async function directory() {
  const hasher = new PasswordHasher();
  const records: UserRecord[] = [
    {
      id: 'u-1',
      username: 'carol',
      password_hash: await hasher.hash('carol-pass', FAST),
      roles: ['user'],
    },
  ];
  const config = new ConfigService<IdentityEnv, true>({ OIDC_ISSUERS: issuers });
  return { hasher, users: new UserDirectory(hasher, records, config) };
}

describe('UserDirectory', () => {
  it('signs in with the right password only', async () => {
    const { users } = await directory();
    await expect(users.verifyPassword('carol', 'carol-pass')).resolves.toEqual({
      id: 'u-1',
      username: 'carol',
      roles: ['user'],
    });
    await expect(users.verifyPassword('carol', 'wrong')).resolves.toBeUndefined();
    expect(users.findById('u-1')?.username).toBe('carol');
    expect(users.findById('carol')).toBeUndefined();
  });

  it('still runs one scrypt for an unknown username', async () => {
    const { hasher, users } = await directory();
    const verify = jest.spyOn(hasher, 'verify');
    await expect(users.verifyPassword('mallory', 'carol-pass')).resolves.toBeUndefined();
    await expect(users.verifyPassword('__proto__', 'x')).resolves.toBeUndefined();
    expect(verify).toHaveBeenCalledTimes(2);
    expect(verify).toHaveBeenNthCalledWith(1, 'carol-pass', hasher.unknownUserHash);
  });

  it('maps an OIDC identity to a stable local user, admin only through admin_role', async () => {
    const { users } = await directory();
    const ops = users.fromOidc(ISSUER, 'abc', { preferred_username: 'dana', groups: ['ops', 'x'] });
    expect(ops).toEqual({
      id: oidcUserId(ISSUER, 'abc'),
      username: 'dana',
      roles: ['user', 'admin'],
    });
    expect(ops.id).toMatch(/^oidc-[\w-]{43}$/);
    expect(users.fromOidc(ISSUER, 'abc', {}).id).toBe(ops.id);

    // An upstream role spelt like ours grants nothing: only admin_role does.
    expect(users.fromOidc(ISSUER, 'abc', { groups: ['admin'] }).roles).toEqual(['user']);
    expect(users.fromOidc(ISSUER, 'abc', { groups: 'ops' }).roles).toEqual(['user']);
    expect(users.fromOidc(ISSUER, 'abc', { email: 'e@x' }).username).toBe('e@x');
    expect(users.fromOidc(ISSUER, 'abc', {}).username).toBe('abc');
  });

  it('keeps the same sub at two issuers apart, and reads dotted role paths', async () => {
    const { users } = await directory();
    const other = users.fromOidc('https://other.example.com', 'abc', { groups: ['ops'] });
    expect(other.id).not.toBe(oidcUserId(ISSUER, 'abc'));
    expect(other.roles).toEqual(['user']);
    const kc = users.fromOidc('https://kc.example.com', 'k', {
      realm_access: { roles: ['admin'] },
    });
    expect(kc.roles).toEqual(['user', 'admin']);
    expect(() => users.fromOidc('https://unknown.example.com', 'abc', {})).toThrow();
  });
});

describe('UserDirectory.standing (looked up at every refresh)', () => {
  it('follows the records it was last given', async () => {
    const { users } = await directory();
    const oidcUser = oidcUserId(ISSUER, 'ext-1');
    expect(users.standing('u-1')).toEqual({ kind: 'active', roles: ['user'] });
    expect(users.standing('nobody')).toEqual({ kind: 'removed' });
    expect(users.standing(oidcUser)).toEqual({ kind: 'active', roles: undefined });

    const hasher = new PasswordHasher();
    const hash = await hasher.hash('carol-pass', FAST);
    users.replace([
      { id: 'u-1', username: 'carol', password_hash: hash, roles: ['user'], disabled: true },
      { id: oidcUser, disabled: true },
    ]);
    expect(users.standing('u-1')).toEqual({ kind: 'disabled' });
    expect(users.standing(oidcUser)).toEqual({ kind: 'disabled' });
    await expect(users.verifyPassword('carol', 'carol-pass')).resolves.toBeUndefined();
  });
});
