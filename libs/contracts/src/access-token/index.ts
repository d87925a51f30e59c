export * from './profile';
export * from './verify';
