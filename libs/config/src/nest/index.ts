export * from './feature-settings';
export * from './async-options';
export * from './config-from-env';
