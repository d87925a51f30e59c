export * from './decorators';
export * from './revocation-store';
