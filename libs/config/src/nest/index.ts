export * from './feature-settings';
