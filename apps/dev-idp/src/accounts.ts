// The dev provider signs in the session service's own demo users, hashed by its own hasher:
// one definition of them (and of their well-known passwords) in the repository. A dev-only
// app reaching into the session service on purpose, hence the two exceptions to the rule.
// eslint-disable-next-line @typescript-eslint/no-restricted-imports -- see above
import { PasswordHasher } from '../../session-service/src/identity/password-hasher';
// eslint-disable-next-line @typescript-eslint/no-restricted-imports -- see above
import {
  demoUsers,
  isPasswordUser,
  type PasswordUserRecord,
} from '../../session-service/src/identity/user-records';

/** A user of the dev provider: the session service's demo users (alice, bob, admin). */
export interface Account {
  id: string;
  username: string;
  roles: string[];
}

/**
 * The demo users, from the session service's own definition (user-records.ts) hashed at start
 * as it hashes them: their plain passwords stay in that one file. Wrong usernames cost a
 * hash like wrong passwords.
 */
export class Accounts {
  private constructor(
    private readonly users: PasswordUserRecord[],
    private readonly hasher: PasswordHasher,
  ) {}

  static async demo(nodeEnv: 'development' | 'production' | 'test'): Promise<Accounts> {
    const hasher = new PasswordHasher();
    const records = await demoUsers(
      { NODE_ENV: nodeEnv, SEED_DEMO_USERS: true, USERS: undefined, USERS_FILE: undefined },
      hasher,
    );
    return new Accounts(records.filter(isPasswordUser), hasher);
  }

  find(id: string): Account | undefined {
    const user = this.users.find((record) => record.id === id);
    return user && { id: user.id, username: user.username, roles: [...user.roles] };
  }

  /** The account whose password this is, or undefined (unknown user or wrong password). */
  async authenticate(username: string, password: string): Promise<Account | undefined> {
    const user = this.users.find((record) => record.username === username);
    const ok = await this.hasher.verify(
      password,
      user?.password_hash ?? this.hasher.unknownUserHash,
    );
    return ok && user && !user.disabled ? this.find(user.id) : undefined;
  }

  get usernames(): string[] {
    return this.users.map((user) => user.username);
  }
}
