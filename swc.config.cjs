// One SWC configuration for the build (scripts/build.ts) and for Jest, so
// tests run the same decorator and module semantics as production code.
const path = require('node:path');
const tsconfig = require('./tsconfig.json');

/** @type {import('@swc/core').Options} */
module.exports = {
  sourceMaps: true,
  module: { type: 'commonjs' },
  jsc: {
    target: 'es2023',
    parser: { syntax: 'typescript', decorators: true },
    transform: { legacyDecorator: true, decoratorMetadata: true },
    keepClassNames: true,
    baseUrl: __dirname,
    paths: tsconfig.compilerOptions.paths,
  },
};
module.exports.root = path.resolve(__dirname);
