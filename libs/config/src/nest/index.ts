export * from './feature-settings';
export * from './async-options';
