export * from './test-infra';
export * from './topic-recorder';
