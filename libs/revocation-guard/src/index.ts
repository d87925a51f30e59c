export * from '@app/auth-metadata';
export {
  bearerToken,
  InvalidAccessTokenError,
  RevocationStore,
  type AccessTokenClaims,
  type InvalidAccessTokenReason,
  type TokenIdentity,
} from '@app/contracts';
export * from './authenticator';
export * from './guard-metrics';
export * from './guard.env';
export * from './http/middleware';
export * from './logger';
export * from './nest/current-session.decorator';
export * from './nest/me.controller';
export * from './nest/revocation-auth.guard';
export * from './nest/revocation-guard.module';
export * from './revocation-guard';
export * from './verification/remote-keys';
export * from './verification/token-verifier';
export * from './verification/verified-token-cache';
export * from './view/freshness';
export * from './view/revocation-consumer';
