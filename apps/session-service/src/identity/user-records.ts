import { InvalidEnvironmentError } from '@app/config';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { DEMO_USERS_IN_PRODUCTION, type IdentityEnv } from './identity.env';
import { parsePasswordHash, type PasswordHasher } from './password-hasher';

/** Injection token of the users loaded at start (`UserRecord[]`). */
export const USER_RECORDS = Symbol('USER_RECORDS');
/** Injection token of the demo users, hashed once at start (`UserRecord[]`, empty unless seeded). */
export const DEMO_USER_RECORDS = Symbol('DEMO_USER_RECORDS');

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

/** A user who signs in with a password. `disabled`: kept, but refused at sign-in and refresh. */
export const passwordUserRecord = z.strictObject({
  id: userId.refine(
    (id) => !id.startsWith(OIDC_USER_ID_PREFIX),
    `"${OIDC_USER_ID_PREFIX}" is reserved for OpenID Connect users`,
  ),
  username: z.string().min(1).max(200),
  password_hash: z
    .string()
    .refine((hash) => parsePasswordHash(hash) !== undefined, 'is not scrypt$N$r$p$salt$hash'),
  roles: z.array(z.string().min(1)),
  disabled: z.boolean().optional(),
});
export type PasswordUserRecord = z.output<typeof passwordUserRecord>;

/**
 * An OpenID Connect user (who is otherwise not stored here: the provider vouches for them)
 * listed by their local id (`oidc-…`, the `sub` of their access tokens) to disable them.
 */
export const disabledOidcUserRecord = z.strictObject({
  id: userId.refine((id) => id.startsWith(OIDC_USER_ID_PREFIX), 'must start with "oidc-"'),
  disabled: z.literal(true),
});
export type DisabledOidcUserRecord = z.output<typeof disabledOidcUserRecord>;

export type UserRecord = PasswordUserRecord | DisabledOidcUserRecord;

export const isPasswordUser = (record: UserRecord): record is PasswordUserRecord =>
  'password_hash' in record;

/** Which schema an entry answers to: by its id, so errors name the fields that are wrong. */
function recordSchema(entry: unknown) {
  if (typeof entry !== 'object' || entry === null) return passwordUserRecord;
  const { id } = entry as { id?: unknown };
  return typeof id === 'string' && id.startsWith(OIDC_USER_ID_PREFIX) && !('username' in entry)
    ? disabledOidcUserRecord
    : passwordUserRecord;
}

const DEMO_USERS = [
  { username: 'alice', password: 'alice-pass', roles: ['user'] },
  { username: 'bob', password: 'bob-pass', roles: ['user'] },
  { username: 'admin', password: 'admin-pass', roles: ['user', 'admin'] },
];

/**
 * The demo users' scrypt cost: low (1 MiB, about 2 ms), since their passwords are published
 * in the README and a costly hash would protect nothing; every sign-in of theirs in the stack,
 * the tests and the dev provider would pay OWASP's cost (~0.3 s of CPU) for nothing. Real
 * users' hashes (USERS, USERS_FILE) carry their own parameters.
 */
export const DEMO_SCRYPT_PARAMS = { N: 2 ** 10, r: 8, p: 1 } as const;

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
  if (!Array.isArray(json)) refuse(variable, 'is not a JSON array');
  return json.map((entry: unknown, index) => {
    const result = recordSchema(entry).safeParse(entry);
    if (result.success) return result.data;
    const issue = result.error.issues[0];
    return refuse(
      variable,
      `${[index, ...(issue?.path ?? [])].join('.')}: ${issue?.message ?? 'invalid'}`,
    );
  });
}

/** The users of USERS or USERS_FILE (read again when the file changes). */
export async function configuredUsers(env: IdentityEnv): Promise<UserRecord[]> {
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
 * alice, bob and admin with well-known passwords, when SEED_DEMO_USERS is on. Hashed here (at
 * DEMO_SCRYPT_PARAMS), so their plain passwords exist only in this file.
 */
export async function demoUsers(env: IdentityEnv, hasher: PasswordHasher): Promise<UserRecord[]> {
  // Repeats the env rule: this module must refuse even if the app forgot `identityEnvRules`.
  if (env.SEED_DEMO_USERS && env.NODE_ENV === 'production') {
    refuse('SEED_DEMO_USERS', DEMO_USERS_IN_PRODUCTION);
  }
  if (!env.SEED_DEMO_USERS) return [];
  return Promise.all(
    DEMO_USERS.map(async ({ username, password, roles }) => ({
      id: username,
      username,
      password_hash: await hasher.hash(password, DEMO_SCRYPT_PARAMS),
      roles,
    })),
  );
}

/** Configured and demo users together; an id or username listed twice is refused. */
export function combineUsers(env: IdentityEnv, configured: UserRecord[], demo: UserRecord[]) {
  const users = [...configured, ...demo];
  const variable = env.USERS_FILE === undefined ? 'USERS' : 'USERS_FILE';
  const seen = { id: new Set<string>(), username: new Set<string>() };
  for (const user of users) {
    const names = { id: user.id, username: isPasswordUser(user) ? user.username : undefined };
    for (const key of ['id', 'username'] as const) {
      const name = names[key];
      if (name === undefined) continue;
      if (seen[key].has(name)) refuse(variable, `${key} "${name}" appears twice`);
      seen[key].add(name);
    }
  }
  return users;
}

/**
 * The users who can sign in with a password: USERS or USERS_FILE, plus the demo users when
 * SEED_DEMO_USERS is on; and OpenID Connect users listed to disable them.
 */
export async function loadUserRecords(
  env: IdentityEnv,
  hasher: PasswordHasher,
): Promise<UserRecord[]> {
  const demo = await demoUsers(env, hasher);
  return combineUsers(env, await configuredUsers(env), demo);
}
