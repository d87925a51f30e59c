// Framework-free: the guard itself, and its middleware for Express, Connect, node:http and
// Fastify. The NestJS module, guard and decorators are `@app/revocation-guard/nest`.
export {
  bearerToken,
  InvalidAccessTokenError,
  RevocationStore,
  SESSION_REVOKED,
  type AccessTokenClaims,
  type RevocationEvent,
  type SessionRevoked,
  type InvalidAccessTokenReason,
  type TokenIdentity,
} from '@app/contracts';
/** KafkaJS's `brokers` for a client of your own: the next seed broker at each call. */
export { rotatingSeeds } from '@app/kafka';
export * from './authenticator';
export * from './guard-metrics';
export * from './guard.env';
export * from './http/middleware';
export * from './logger';
export * from './revocation-guard';
export * from './verification/remote-keys';
export * from './verification/token-verifier';
export * from './verification/verified-token-cache';
export * from './view/freshness';
export * from './view/revocation-consumer';
export * from './view/revocation-listeners';
