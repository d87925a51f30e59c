export * from './test-infra';
export * from './topic-recorder';
export * from './oidc-issuer';
export * from './http-server';
export * from './script-slots';
export * from './http-client';
export * from './access-token-issuer';
export * from './browser-client';
