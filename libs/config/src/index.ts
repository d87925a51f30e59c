export * from './env';
export * from './validate-env';
export * from './env-docs';
