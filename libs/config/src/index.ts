export * from './env';
export * from './validate-env';
