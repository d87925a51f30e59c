// Three projects: unit specs need nothing running; integration and end-to-end
// tests share one real Kafka broker and one real Redis started by the global setup.
const { root, ...swc } = require('./swc.config.cjs');

const transform = { '^.+\\.ts$': ['@swc/jest', { ...swc, swcrc: false }] };
const moduleNameMapper = {
  '^@app/([^/]+)$': '<rootDir>/libs/$1/src',
  // A lib's NestJS part, apart from its framework-free core.
  '^@app/([^/]+)/nest$': '<rootDir>/libs/$1/src/nest',
  // `await import('./x.js')` in TypeScript (nodenext) names the compiled file; Jest runs the source.
  '^(\\.{1,2}/.*)\\.js$': '$1',
};
const common = {
  rootDir: root,
  testEnvironment: 'node',
  transform,
  moduleNameMapper,
  moduleFileExtensions: ['ts', 'js', 'json'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/', '/.tools/'],
  // Built output and scratch projects (the packed guard's) are not modules of the repository.
  modulePathIgnorePatterns: ['<rootDir>/dist/', '<rootDir>/.data/', '<rootDir>/.tools/'],
};
const withServices = {
  ...common,
  globalSetup: '<rootDir>/test/setup/global-setup.ts',
  globalTeardown: '<rootDir>/test/setup/global-teardown.ts',
  setupFilesAfterEnv: ['<rootDir>/test/setup/service-timeouts.ts'],
};

module.exports = {
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: ['<rootDir>/{apps,libs,scripts,test}/**/*.spec.ts'],
    },
    {
      ...withServices,
      displayName: 'integration',
      testMatch: ['<rootDir>/{apps,libs,test}/**/*.int-spec.ts'],
    },
    {
      ...withServices,
      displayName: 'e2e',
      testMatch: ['<rootDir>/test/e2e/**/*.e2e-spec.ts'],
    },
  ],
};
