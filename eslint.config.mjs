import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import { readFileSync } from 'node:fs';
import tseslint from 'typescript-eslint';

// A lib is imported through its public entry `@app/<lib>` or a subpath tsconfig.json declares
// (`@app/config/nest`…), never through its files: what it does not export is its own business.
const declaredSubpaths = Object.keys(
  JSON.parse(readFileSync(new URL('./tsconfig.json', import.meta.url), 'utf8')).compilerOptions
    .paths,
)
  .map((alias) => alias.replace(/^@app\//, ''))
  .filter((lib) => lib.includes('/'));
const escape = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const deepLibImport = {
  regex: `^@app/(?!(?:${declaredSubpaths.map(escape).join('|')})$)[^/]+/`,
  message:
    'Import a lib through @app/<lib> or a subpath declared in tsconfig.json (paths), not its files.',
};
// From inside apps/ and libs/, a relative import that climbs out of its own app or lib into
// another one's src/ (`../../kafka/src/…`, `../../../libs/…`, `../../../apps/…`). An app's or
// lib's own test/ folder importing its own src/ (`../src/…`) is fine: after the climb comes
// `src` itself, not another folder holding one. Repo-level code in test/ and bench/ is outside
// this: apps have no public entry, so test/unit reads an app's env schema from its src/.
const crossPackageImport = {
  regex: '^(?:\\./)?(?:\\.\\./)+(?:(?:[^./][^/]*/)+src(?:/|$)|(?:apps|libs)(?:/|$))',
  message:
    "Do not reach into another app's or lib's files; import the lib through @app/<lib> (tsconfig.json paths).",
};

export default tseslint.config(
  {
    ignores: [
      'node_modules',
      'dist',
      'dist.*',
      '.tools',
      '.data',
      'scripts/kafka/target',
      'bench/results',
    ],
  },
  js.configs.recommended,
  {
    files: ['**/*.ts'],
    extends: [...tseslint.configs.strictTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      // Nest modules are classes with decorators and no members.
      '@typescript-eslint/no-extraneous-class': 'off',
      // Nest declares its option bags as classes; object literals are how they are meant to be passed.
      '@typescript-eslint/no-unsafe-class-instance-assignment': 'off',
      '@typescript-eslint/no-restricted-imports': ['error', { patterns: [deepLibImport] }],
    },
  },
  {
    // Options are not merged across blocks: this one repeats the @app rule.
    files: ['apps/**/*.ts', 'libs/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        { patterns: [deepLibImport, crossPackageImport] },
      ],
    },
  },
  {
    files: ['**/*.spec.ts', '**/*.int-spec.ts', '**/*.e2e-spec.ts', '**/test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      // Jest's asymmetric matchers (expect.any, expect.objectContaining…) are typed `any`.
      '@typescript-eslint/no-unsafe-assignment': 'off',
    },
  },
  {
    // Node runs scripts and benchmarks as TypeScript by stripping the types: syntax that
    // would need compiling (parameter properties, enums, namespaces) fails there at run time.
    files: ['scripts/**/*.ts', 'bench/**/*.ts'],
    ignores: ['bench/overhead-app/**'],
    rules: {
      'no-restricted-syntax': [
        'error',
        ...['TSParameterProperty', 'TSEnumDeclaration', 'TSModuleDeclaration'].map((selector) => ({
          selector,
          message: 'Node runs this file by stripping types: use erasable TypeScript syntax only.',
        })),
      ],
    },
  },
  {
    // The web console: browser code (apps/gateway/web/tsconfig.json), Preact components in TSX.
    files: ['apps/gateway/web/**/*.ts', 'apps/gateway/web/**/*.tsx'],
    extends: [...tseslint.configs.strictTypeChecked],
    languageOptions: {
      globals: { ...globals.browser },
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
    },
  },
  {
    files: ['**/*.mjs', '**/*.cjs'],
    languageOptions: { globals: { ...globals.node } },
  },
  prettier,
);
