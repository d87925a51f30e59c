export * from './set-claims';
export * from './uris';
