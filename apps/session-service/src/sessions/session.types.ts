export type DevicePolicy = 'evict_oldest' | 'reject';

/** What a session's access tokens are: the JWT itself, or an opaque `at_` token standing for it. */
export type TokenFormat = 'jwt' | 'opaque';

export interface Plan {
  max_devices: number;
  policy: DevicePolicy;
}

export interface Device {
  name: string;
  platform?: string | undefined;
}

/** Who is signing in, and from where. */
export interface SignIn {
  userId: string;
  roles: string[];
  device: Device;
  remember: boolean;
  userAgent?: string | undefined;
  ip?: string | undefined;
  /** The access-token format of the session, for its sign-in and every refresh ('jwt' if absent). */
  tokenFormat?: TokenFormat | undefined;
  /** An OIDC sign-in's ID token, which opens at most one session (see OidcVerifier). */
  idToken?: { use: string; until: number } | undefined;
  /** A session of this user to end first (the device the user chose to sign out at a device
   * limit); ignored unless it is a live session of this user. */
  replaceSessionId?: string | undefined;
  /**
   * An OIDC sign-in's provider session: the issuer, the ID token's `sub` and its `sid` (when
   * given), kept with the session so that the provider's back-channel logout can end it.
   */
  provider?: ProviderSession | undefined;
}

/** A session at an OpenID provider, as its ID tokens and logout tokens name it. */
export interface ProviderSession {
  issuer: string;
  sub: string;
  sid?: string | undefined;
}

/**
 * What a verified logout token ends: with `sid`, the sessions signed in with that provider
 * session (of `userId` when known from `sub`, else of the user the index names); with `userId`
 * (from `sub`) only, every session of that user from that issuer.
 */
export interface ProviderLogout {
  issuer: string;
  sid?: string | undefined;
  sub?: string | undefined;
  /** The user `sub` maps to (oidcUserId), when the token has a `sub`. */
  userId?: string | undefined;
}

/** A session as the "my devices" list shows it. */
export interface SessionView {
  session_id: string;
  device: Device;
  user_agent: string | null;
  ip: string | null;
  created_at: string;
  last_active_at: string;
}

/** What signing a token for a session needs. */
export interface TokenSubject {
  sessionId: string;
  userId: string;
  roles: string[];
  /** Epoch ms: no token of this session may outlive it. */
  absoluteAt: number;
  /**
   * Epoch seconds: the `iat` of the token to sign, fixed by the Redis step that created or
   * refreshed the session (strictly after the user's last "log out everywhere").
   */
  issuedAt: number;
  /** The format the session's sign-in asked for; its refreshes answer the same. */
  tokenFormat: TokenFormat;
}

/** The access JWT an opaque token of a live session stands for. */
export interface OpaqueTokenTarget {
  jwt: string;
  sessionId: string;
  userId: string;
}

export type Initiator = 'user' | 'admin' | 'policy' | 'system';

export type CreateResult =
  | ({ kind: 'created'; refreshToken: string; evicted: number } & TokenSubject)
  | { kind: 'rejected'; sessions: SessionView[] }
  | { kind: 'replayed' }
  /** The ID token's provider session was logged out (back-channel) before the session opened. */
  | { kind: 'provider_ended' };

export type RotateResult =
  | ({ kind: 'rotated'; refreshToken: string } & TokenSubject)
  | { kind: 'invalid' }
  | { kind: 'reused'; sessionId: string };
