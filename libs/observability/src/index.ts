export * from './http-app';
export * from './metrics';
export * from './observability.module';
export * from './readiness-check';
export * from './periodic-task';
