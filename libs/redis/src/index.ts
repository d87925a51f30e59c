export * from './redis.module';
export * from './lua-commands';
