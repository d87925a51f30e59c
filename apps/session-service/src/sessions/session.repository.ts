import type {
  CreateResult,
  Initiator,
  OpaqueTokenTarget,
  Plan,
  ProviderLogout,
  RotateResult,
  SessionView,
  SignIn,
} from './session.types';

/**
 * Where sessions live, and the rules that must hold atomically there: the device limit at
 * sign-in, refresh rotation with reuse detection, every way a session ends, each end with its
 * revocation event written in the same step. `now` is the caller's clock (milliseconds).
 *
 * `RedisSessionRepository` is the implementation (Lua commands, one hash slot per user);
 * `InMemorySessionRepository` is a faithful fake for unit tests. One conformance suite
 * (`session-repository.conformance.ts`) runs against both.
 */
export interface SessionRepository {
  /** Opens a session under the user's device limit (ends the oldest, or refuses). */
  create(signIn: SignIn, now: number): Promise<CreateResult>;
  /** Rotates a refresh token: a new one, a sibling within the grace window, or a reuse. */
  rotate(refreshToken: string, now: number): Promise<RotateResult>;
  /** Ends a session (of `owner` only, when given); its user id, or undefined if none ended. */
  end(
    sessionId: string,
    how: { initiator: Initiator; reason: string; owner?: string },
    now: number,
  ): Promise<string | undefined>;
  /**
   * Back-channel logout: ends the sessions from a provider session (`sid`) or, with the user
   * only, every session of that user from that issuer, each with its own event; how many
   * ended. With `sid`, later sign-ins with ID tokens of that provider session are refused.
   */
  endProviderSessions(
    logout: ProviderLogout,
    how: { initiator: Initiator; reason: string },
    now: number,
  ): Promise<number>;
  /** "Log out everywhere": every session of the user, one user-wide event; how many ended. */
  endAll(
    userId: string,
    how: { initiator: Initiator; reason: string },
    now: number,
  ): Promise<number>;
  /** The user's live sessions, most recently active first (expired ones end on the way). */
  list(userId: string, now: number): Promise<SessionView[]>;
  /** The owner of a live session, or undefined when it ended or expired. */
  ownerOf(sessionId: string, now: number): Promise<string | undefined>;
  /** The session a refresh token (of any link of its family) belongs to, if any. */
  sessionOfRefreshToken(refreshToken: string): Promise<string | undefined>;
  /**
   * Issues an opaque access token standing for `accessToken.jwt` (phantom token): only its
   * hash is kept, with the JWT, until `accessToken.expiresAt` (ms) or until the session ends,
   * whichever comes first. Undefined, and nothing stored, when the session has ended.
   */
  storeOpaqueToken(
    sessionId: string,
    accessToken: { jwt: string; expiresAt: number },
    now: number,
  ): Promise<string | undefined>;
  /** The JWT an opaque token stands for, while it is unexpired and its session live. */
  resolveOpaqueToken(token: string, now: number): Promise<OpaqueTokenTarget | undefined>;
  plan(userId: string): Promise<Plan>;
  setPlan(userId: string, plan: Plan): Promise<void>;
  /** Ends every session past its idle or absolute deadline; how many users had some. */
  sweep(now: number): Promise<number>;
}

/** Injection token of the {@link SessionRepository}. */
export const SESSION_REPOSITORY = Symbol('SESSION_REPOSITORY');
