import { join } from 'node:path';
import { loadLuaCommands, luaArray, luaCommand } from '@app/redis';
import { z } from 'zod';
import { TOKEN_FORMATS } from '../../tokens/opaque-token';
import type { TokenFormat } from '../session.types';

// The session service's atomic steps, one Lua file each in ./lua (header comments there give
// each one's keys, argument and reply). Each runs on the keys of one user, all in the hash slot
// of the user's outbox shard: the state change and the outbox entry of every session it ends
// happen together or not at all.

const commands = loadLuaCommands(join(__dirname, 'lua'));

/** What every command that may end a session needs besides its own input. */
export interface EventContext {
  /** Prefix of the shard's keys, `<prefix>{o<n>}:`. */
  base: string;
  issuer: string;
  /** Random, fresh per call: the prefix of the `jti` of the events the call appends. */
  nonce: string;
  now: number;
}

const tokenFormat = z.enum(TOKEN_FORMATS);

/** How many events a command appended: it is durable only once those are (REDIS_DURABILITY). */
const events = { events: z.int().nonnegative() };

export const createSession = luaCommand(
  commands,
  'createSession',
  z.discriminatedUnion('kind', [
    z.object({
      kind: z.literal('created'),
      iat: z.int().positive(),
      evicted: z.int().nonnegative(),
      ...events,
    }),
    z.object({ kind: z.literal('rejected'), sessions: luaArray(z.string()), ...events }),
    z.object({ kind: z.literal('replayed'), ...events }),
    z.object({ kind: z.literal('provider_ended'), ...events }),
  ]),
).takes<
  EventContext & {
    user: string;
    sid: string;
    /** SHA-256 of the refresh token's family and secret. */
    family: string;
    secret: string;
    default_max: number;
    default_policy: string;
    idle_ms: number;
    absolute_at: number;
    remember: '0' | '1';
    roles: string;
    device_name: string;
    device_platform: string;
    user_agent: string;
    ip: string;
    /** The access-token format of the session (its refreshes answer the same). */
    format: TokenFormat;
    /** A session of this user to end first (ignored if it is not one). */
    replace?: string;
    /** OIDC sign-in: when the ID token expires (ms); until then it opens no other session. */
    id_token_until?: number;
    /** OIDC sign-in: the provider's session (issuer, `sub`, `sid` when given), for back-channel logout. */
    idp_iss?: string;
    idp_sub?: string;
    idp_sid?: string;
  }
>();

/** Back-channel logout: ends the user's sessions from one provider session, or from one issuer. */
export const endProviderSessions = luaCommand(
  commands,
  'endProviderSessions',
  z.object({ ended: z.int().nonnegative(), ...events }),
).takes<
  EventContext & {
    user: string;
    idp_iss: string;
    idp_sid?: string;
    idp_sub?: string;
    entity: string;
    reason: string;
    /** How long (ms) a sign-in with an ID token of the ended provider session is refused. */
    marker_ms: number;
  }
>();

/** The index of provider sessions (`sid`) to our users; outside any user's slot. */
export const providerSession = luaCommand(
  commands,
  'providerSession',
  z.union([
    z.object({ ok: z.boolean() }),
    z.object({ user: z.union([z.string(), z.literal(false)]) }),
  ]),
).takes<
  { op: 'sign_in'; user: string; until: number } | { op: 'logout'; now: number; marker_ms: number }
>();

export const rotateRefresh = luaCommand(
  commands,
  'rotateRefresh',
  z.discriminatedUnion('kind', [
    z.object({
      kind: z.literal('rotated'),
      sid: z.string(),
      user: z.string(),
      roles: z.string(),
      absolute_at: z.number(),
      iat: z.int().positive(),
      format: tokenFormat,
      ...events,
    }),
    z.object({ kind: z.literal('invalid'), ...events }),
    z.object({ kind: z.literal('reused'), sid: z.string(), ...events }),
  ]),
).takes<EventContext & { secret: string; next: string; grace_ms: number }>();

export const endSession = luaCommand(
  commands,
  'endSession',
  z.object({ user: z.union([z.string(), z.literal(false)]), ...events }),
).takes<EventContext & { sid: string; entity: string; reason: string; owner?: string }>();

export const endAllSessions = luaCommand(
  commands,
  'endAllSessions',
  z.object({ ended: z.int().nonnegative(), ...events }),
).takes<EventContext & { user: string; entity: string; reason: string; retention_ms: number }>();

export const endExpired = luaCommand(
  commands,
  'endExpired',
  z.object({ ended: z.int().nonnegative(), ...events }),
).takes<EventContext & { user: string }>();

export const expiredUsers = luaCommand(
  commands,
  'expiredUsers',
  z.object({ users: luaArray(z.string()) }),
).takes<{ base: string; now: number; limit: number }>();

/** Stores an opaque access token of a live session (phantom token); appends no event. */
export const storeAccessToken = luaCommand(
  commands,
  'storeAccessToken',
  z.object({ stored: z.boolean() }),
).takes<{
  now: number;
  sid: string;
  /** SHA-256 of the opaque token. */
  hash: string;
  jwt: string;
  /** The JWT's `exp`, in ms: the key expires then. */
  exp: number;
}>();
