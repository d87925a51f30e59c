import type { ConfigType } from '@nestjs/config';
import { featureSettings } from '@app/config/nest';
import { CLOCK_TOLERANCE_SECONDS } from '@app/contracts';
import { sessionServiceEnv } from '../config';
import type { Plan } from './session.types';

/** The sessions feature's settings: what its providers inject (see featureSettings). */
export const sessionsSettings = featureSettings('sessions', sessionServiceEnv, (env) => ({
  keyPrefix: env.REDIS_KEY_PREFIX,
  shards: env.OUTBOX_SHARDS,
  issuer: env.ISSUER,
  idleMs: env.SESSION_IDLE_TIMEOUT_SECONDS * 1000,
  absoluteMs: env.SESSION_ABSOLUTE_TIMEOUT_SECONDS * 1000,
  rememberMs: env.SESSION_REMEMBER_ME_SECONDS * 1000,
  defaultPlan: {
    max_devices: env.DEFAULT_MAX_DEVICES,
    policy: env.DEFAULT_DEVICE_POLICY,
  } satisfies Plan,
  graceMs: env.REFRESH_REUSE_GRACE_SECONDS * 1000,
  // As long as an API instance remembers a user-wide revocation (see RevocationStore).
  revocationRetentionMs: (env.ACCESS_TOKEN_TTL_SECONDS + CLOCK_TOLERANCE_SECONDS + 1) * 1000,
  sweepIntervalMs: env.SESSION_SWEEP_INTERVAL_SECONDS * 1000,
  // No ID token older than this opens a session: how long a provider session logged out
  // (back-channel) must be remembered to refuse ID tokens of it.
  providerLogoutMemoryMs: (env.OIDC_ID_TOKEN_MAX_AGE_SECONDS + CLOCK_TOLERANCE_SECONDS + 5) * 1000,
  durability: {
    mode: env.REDIS_DURABILITY,
    replicas: env.REDIS_DURABILITY_REPLICAS,
    timeoutMs: env.REDIS_DURABILITY_TIMEOUT_MS,
  },
}));
export type SessionsSettings = ConfigType<typeof sessionsSettings>;

/** The sign-in throttle's settings (see SignInThrottle). */
export const throttleSettings = featureSettings('throttle', sessionServiceEnv, (env) => ({
  keyPrefix: env.REDIS_KEY_PREFIX,
  windowSeconds: env.RATE_LIMIT_WINDOW_SECONDS,
  perIp: env.RATE_LIMIT_PER_IP,
  consecutiveFails: env.RATE_LIMIT_CONSECUTIVE_FAILS,
  blockSeconds: env.RATE_LIMIT_BLOCK_SECONDS,
  failsPerIp: env.RATE_LIMIT_FAILS_PER_IP,
  failsPerUsername: env.RATE_LIMIT_FAILS_PER_USERNAME,
}));
export type ThrottleSettings = ConfigType<typeof throttleSettings>;
