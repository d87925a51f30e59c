/**
 * Something an app needs before it can serve: Redis, Kafka, a replayed revocation view…
 * `check` resolves with details to show on `/health/ready`, or rejects with the reason.
 */
export interface ReadinessCheck {
  readonly name: string;
  check(signal: AbortSignal): Promise<Record<string, unknown> | undefined>;
}

/** Injection token for the list of an app's readiness checks. */
export const READINESS_CHECKS = Symbol('READINESS_CHECKS');
