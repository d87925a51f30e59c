import { Inject, Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { optional } from '@app/config';
import type { JWTPayload } from 'jose';
import { createHash } from 'node:crypto';
import type { IdentityEnv, OidcIssuerConfig } from './identity.env';
import { PasswordHasher } from './password-hasher';
import {
  isPasswordUser,
  OIDC_USER_ID_PREFIX,
  USER_RECORDS,
  type PasswordUserRecord,
  type UserRecord,
} from './user-records';

/** Who signed in. `id` is the `sub` of their access tokens. */
export interface User {
  id: string;
  username: string;
  roles: string[];
}

/**
 * A stable, opaque local id for an OIDC identity. Hashed, so that any `sub` (up to 255
 * characters of anything) becomes a fixed-length id safe in URLs and keys, and the issuer is
 * part of it: the same `sub` at two issuers is two people.
 */
export function oidcUserId(issuer: string, sub: string): string {
  const digest = createHash('sha256').update(issuer).update('\0').update(sub).digest('base64url');
  return `${OIDC_USER_ID_PREFIX}${digest}`;
}

/** Reads a claim by its exact name (e.g. `https://example.com/roles`), else as a dotted path. */
function claimAt(claims: JWTPayload, name: string): unknown {
  if (Object.hasOwn(claims, name)) return claims[name];
  return name
    .split('.')
    .reduce<unknown>(
      (value, key) =>
        typeof value === 'object' && value !== null && Object.hasOwn(value, key)
          ? (value as Record<string, unknown>)[key]
          : undefined,
      claims,
    );
}

/**
 * Where a user stands now, looked up again at every refresh: roles and existence are not
 * frozen at sign-in. `roles` is undefined for OpenID Connect users, whose roles are those of
 * their last ID token.
 */
export type Standing =
  { kind: 'active'; roles: string[] | undefined } | { kind: 'disabled' } | { kind: 'removed' };

interface Users {
  // Maps, not objects: a username like "__proto__" must be just a username.
  byUsername: Map<string, PasswordUserRecord>;
  byId: Map<string, PasswordUserRecord>;
  disabledOidcUsers: Set<string>;
}

function index(records: readonly UserRecord[]): Users {
  const passwordUsers = records.filter(isPasswordUser);
  return {
    byUsername: new Map(passwordUsers.map((record) => [record.username, record])),
    byId: new Map(passwordUsers.map((record) => [record.id, record])),
    disabledOidcUsers: new Set(
      records.filter((record) => !isPasswordUser(record)).map((record) => record.id),
    ),
  };
}

function toUser(record: PasswordUserRecord): User {
  return { id: record.id, username: record.username, roles: [...record.roles] };
}

@Injectable()
export class UserDirectory {
  private users: Users;
  private readonly issuers: Map<string, OidcIssuerConfig>;

  constructor(
    private readonly hasher: PasswordHasher,
    @Inject(USER_RECORDS) records: readonly UserRecord[],
    config: ConfigService<IdentityEnv, true>,
  ) {
    this.users = index(records);
    const issuers = optional(config.get('OIDC_ISSUERS', { infer: true })) ?? [];
    this.issuers = new Map(issuers.map((issuer) => [issuer.issuer, issuer]));
  }

  /** Replaces every user at once (the users file changed); later lookups see only the new ones. */
  replace(records: readonly UserRecord[]): void {
    this.users = index(records);
  }

  /**
   * The user, when the password is theirs and they are not disabled. An unknown name costs
   * the same scrypt as a known one.
   */
  async verifyPassword(username: string, password: string): Promise<User | undefined> {
    const record = this.users.byUsername.get(username);
    const matches = await this.hasher.verify(
      password,
      record?.password_hash ?? this.hasher.unknownUserHash,
    );
    return record && matches && !record.disabled ? toUser(record) : undefined;
  }

  /** A password user by id; OIDC users are not stored (their roles travel with their session). */
  findById(id: string): User | undefined {
    const record = this.users.byId.get(id);
    return record && toUser(record);
  }

  /** Whether `userId` may still hold a session, and with which roles (see {@link Standing}). */
  standing(userId: string): Standing {
    if (userId.startsWith(OIDC_USER_ID_PREFIX)) {
      return this.users.disabledOidcUsers.has(userId)
        ? { kind: 'disabled' }
        : { kind: 'active', roles: undefined };
    }
    const record = this.users.byId.get(userId);
    if (!record) return { kind: 'removed' };
    return record.disabled ? { kind: 'disabled' } : { kind: 'active', roles: [...record.roles] };
  }

  /**
   * The local user for an identity an `OidcVerifier` accepted. Every such user has the role
   * `user`; `admin` only when the issuer's `admin_role` is in its `roles_claim`. Other upstream
   * role names are not imported: they mean nothing here, and one spelt like a local role must
   * not grant it.
   */
  fromOidc(issuer: string, sub: string, claims: JWTPayload): User {
    const config = this.issuers.get(issuer);
    if (!config) throw new Error('fromOidc called for an issuer that is not configured');
    const upstreamRoles = config.roles_claim ? claimAt(claims, config.roles_claim) : undefined;
    const isAdmin =
      config.admin_role !== undefined &&
      Array.isArray(upstreamRoles) &&
      upstreamRoles.includes(config.admin_role);
    const name = [claims['preferred_username'], claims['email']].find(
      (value): value is string => typeof value === 'string' && value.length > 0,
    );
    return {
      id: oidcUserId(issuer, sub),
      // For display only: not unique, and not used to sign in.
      username: name ?? sub,
      roles: isAdmin ? ['user', 'admin'] : ['user'],
    };
  }
}
