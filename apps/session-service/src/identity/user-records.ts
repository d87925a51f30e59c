import { InvalidEnvironmentError } from '@app/config';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { DEMO_USERS_IN_PRODUCTION, type IdentityEnv } from './identity.env';
import { parsePasswordHash, type PasswordHasher } from './password-hasher';

/** Injection token of the users loaded at start (`UserRecord[]`). */
export const USER_RECORDS = Symbol('USER_RECORDS');

/** Ids of users signed in through OpenID Connect start with this; local ids may not. */
export const OIDC_USER_ID_PREFIX = 'oidc-';

/**
 * A user id as the service issues them (`sub`): a user record's id, or `oidc-<hash>` for an
 * OpenID Connect user. Plain characters only: ids end up in URLs (`/admin/users/:userId`),
 * Redis and Kafka keys and revocation events, whose contract bounds them (libs/contracts).
 */
export const userId = z
  .string()
  .regex(/^[\w.@-]{1,200}$/, 'must be 1-200 letters, digits, "_", ".", "@" or "-"')
  .refine((id) => !/^\.+$/.test(id), 'must not be only dots');

export const userRecord = z.strictObject({
  id: userId.refine(
    (id) => !id.startsWith(OIDC_USER_ID_PREFIX),
    `"${OIDC_USER_ID_PREFIX}" is reserved`,
  ),
  username: z.string().min(1).max(200),
  password_hash: z
    .string()
    .refine((hash) => parsePasswordHash(hash) !== undefined, 'is not scrypt$N$r$p$salt$hash'),
  roles: z.array(z.string().min(1)),
});
export type UserRecord = z.output<typeof userRecord>;

const DEMO_USERS = [
  { username: 'alice', password: 'alice-pass', roles: ['user'] },
  { username: 'bob', password: 'bob-pass', roles: ['user'] },
  { username: 'admin', password: 'admin-pass', roles: ['user', 'admin'] },
];

function refuse(variable: string, problem: string): never {
  throw new InvalidEnvironmentError(`Invalid environment:\n  ${variable}: ${problem}`);
}

/** Parses a users JSON array; problems name the variable and the entry, never echo hashes. */
function parseUsers(variable: string, text: string): UserRecord[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    refuse(variable, 'is not valid JSON');
  }
  const result = z.array(userRecord).safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0];
    refuse(variable, `${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`);
  }
  return result.data;
}

async function configuredUsers(env: IdentityEnv): Promise<UserRecord[]> {
  if (env.USERS !== undefined && env.USERS_FILE !== undefined) {
    refuse('USERS_FILE', 'set USERS or USERS_FILE, not both');
  }
  if (env.USERS !== undefined) return parseUsers('USERS', env.USERS);
  if (env.USERS_FILE === undefined) return [];
  const text = await readFile(env.USERS_FILE, 'utf8').catch((error: unknown) =>
    refuse('USERS_FILE', `cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`),
  );
  return parseUsers('USERS_FILE', text);
}

/**
 * The users who can sign in with a password: USERS or USERS_FILE, plus the demo users when
 * SEED_DEMO_USERS is on. The demo users are hashed here, in parallel (scrypt runs on the
 * thread pool), so their plain passwords exist only in this file.
 */
export async function loadUserRecords(
  env: IdentityEnv,
  hasher: PasswordHasher,
): Promise<UserRecord[]> {
  // Repeats the env rule: this module must refuse even if the app forgot `identityEnvRules`.
  if (env.SEED_DEMO_USERS && env.NODE_ENV === 'production') {
    refuse('SEED_DEMO_USERS', DEMO_USERS_IN_PRODUCTION);
  }
  const users = await configuredUsers(env);
  if (env.SEED_DEMO_USERS) {
    const demo = await Promise.all(
      DEMO_USERS.map(async ({ username, password, roles }) => ({
        id: username,
        username,
        password_hash: await hasher.hash(password),
        roles,
      })),
    );
    users.push(...demo);
  }
  const variable = env.USERS_FILE === undefined ? 'USERS' : 'USERS_FILE';
  for (const key of ['id', 'username'] as const) {
    const seen = new Set<string>();
    for (const user of users) {
      if (seen.has(user[key])) refuse(variable, `${key} "${user[key]}" appears twice`);
      seen.add(user[key]);
    }
  }
  return users;
}
