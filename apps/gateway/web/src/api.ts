import { deviceOf } from '../../src/device';
// The console's only way to the server: the gateway's /bff/* and /api/* with the session cookie
// (never a token in JavaScript) and the CSRF header the gateway requires.

export interface SessionInfo {
  user: { sub: string; roles: string[] };
  session_id: string;
  expires_at?: string;
  csrf_token: string;
}

export interface Device {
  session_id: string;
  device: { name: string; platform?: string };
  user_agent: string | null;
  ip?: string | null;
  created_at: string;
  last_active_at: string;
  current?: boolean;
}

/** An OpenID provider the gateway signs in through ("Sign in with <name>"). */
export interface Provider {
  name: string;
  login_url: string;
}

export interface Plan {
  max_devices: number;
  policy: 'evict_oldest' | 'reject';
}

/** An answer that was not a success: its status, the server's `error` and its words. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly body: Record<string, unknown>,
    readonly retryAfterSeconds: number | undefined,
  ) {
    super(typeof body.error_description === 'string' ? body.error_description : error);
  }
}

/** Called when any call finds the session gone (401): the app shows the sign-in page. */
let onSignedOut: (() => void) | undefined;
export function whenSignedOut(listener: () => void): void {
  onSignedOut = listener;
}

export async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(path, {
    method,
    credentials: 'same-origin',
    headers: {
      'x-csrf': '1',
      accept: 'application/json',
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (response.status === 204) return undefined as T;
  const parsed = (await response.json().catch(() => ({}))) as Record<string, unknown>;
  if (response.ok) return parsed as T;
  const retryAfter = Number(response.headers.get('retry-after'));
  const error = new ApiError(
    response.status,
    typeof parsed.error === 'string' ? parsed.error : `http_${response.status}`,
    parsed,
    Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : undefined,
  );
  // A proxied call refused: the session ended while the page was open. (The page's own
  // /bff/session check and sign-in answer 401 as a matter of course.)
  if (response.status === 401 && path.startsWith('/api/')) onSignedOut?.();
  throw error;
}

const session = (path: string) => `/api/session${path}`;
const enc = encodeURIComponent;
const withReason = (reason: string) => (reason.trim() ? `?reason=${enc(reason.trim())}` : '');

export const api = {
  session: () => call<SessionInfo>('GET', '/bff/session'),
  login: (body: {
    username: string;
    password: string;
    remember: boolean;
    device: { name: string; platform: string };
    end_session_id?: string;
  }) => call<SessionInfo>('POST', '/bff/login', body),
  /** Signed in through a provider: its end-session URL, to sign out there too. */
  logout: () => call<{ end_session_url?: string } | undefined>('POST', '/bff/logout'),
  providers: () => call<Provider[]>('GET', '/bff/providers'),
  devices: () => call<Device[]>('GET', session('/sessions')),
  endDevice: (id: string) => call<undefined>('DELETE', session(`/sessions/${enc(id)}`)),
  logoutEverywhere: () => call<undefined>('POST', session('/auth/logout-all')),
  userSessions: (userId: string) =>
    call<Device[]>('GET', session(`/admin/users/${enc(userId)}/sessions`)),
  adminEnd: (id: string, reason: string) =>
    call<undefined>('DELETE', session(`/admin/sessions/${enc(id)}${withReason(reason)}`)),
  adminEndAll: (userId: string, reason: string) =>
    call<undefined>('POST', session(`/admin/users/${enc(userId)}/logout-all${withReason(reason)}`)),
  setPlan: (userId: string, plan: Plan) =>
    call<Plan>('PUT', session(`/admin/users/${enc(userId)}/plan`), plan),
};

/** This browser as a device: "Chrome on Linux". */
export function thisDevice(): { name: string; platform: string } {
  return deviceOf(navigator.userAgent);
}
