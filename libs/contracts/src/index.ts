export * from './build-event';
export * from './codec';
export * from './heartbeat';
export * from './session-revoked.event';
export * from './topic';
export * from './outbox';
export * from './access-token';
export * from './revocation-store';
