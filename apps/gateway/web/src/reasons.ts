// Why a session ended, in words, from the revocation event's initiating entity and reason.

export interface Revocation {
  session_id?: string;
  user_id: string;
  initiating_entity: 'user' | 'admin' | 'policy' | 'system';
  reason: string;
  at: string;
  applied_at?: string;
  delay_ms?: number;
}

const WORDS: Record<string, string> = {
  user_logout: 'This device was signed out from another device.',
  logout_all: 'You signed out everywhere.',
  admin: 'An administrator signed you out.',
  device_limit: 'You signed in on another device and your plan allows no more devices.',
  replaced_at_sign_in: 'You chose to sign this device out while signing in on another one.',
  refresh_token_reuse:
    'Your session was ended because its refresh token was used twice (possibly stolen).',
  expired: 'Your session expired.',
  user_disabled: 'Your account was disabled.',
  user_removed: 'Your account no longer exists.',
};

/** What the signed-out page tells the user. */
export function signedOutBecause(event: Pick<Revocation, 'initiating_entity' | 'reason'>): string {
  const known = WORDS[event.reason];
  if (known) return known;
  // An admin's own words travel in the reason.
  if (event.initiating_entity === 'admin')
    return `An administrator signed you out: ${event.reason}`;
  return `Your session ended (${event.reason}).`;
}
