// `npm run pack:guard`: the revocation guard as an npm package other teams install.
//
// Compiles the guard and the libs it needs (contracts, config, the framework-free Kafka
// client, auth metadata) with the build's SWC settings, twice (CommonJS and ES modules), and
// their declarations with tsc; puts them beside libs/revocation-guard/package.json and its
// README in .data/guard-package, and runs `npm pack` there. Prints the tarball's path.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { transformFile, type Options } from '@swc/core';

const require = createRequire(import.meta.url);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
/** The build's SWC options (the config module also exports the repository root, not an option). */
const swc: Options = Object.fromEntries(
  Object.entries(require('../swc.config.cjs') as Record<string, unknown>).filter(
    ([name]) => name !== 'root',
  ),
);
const tsconfig = require('../tsconfig.json') as {
  compilerOptions: { paths: Record<string, string[]> };
};

/** What the package holds: these libs' sources, tests and NestJS-only Kafka code left out. */
const LIBS = ['revocation-guard', 'contracts', 'config', 'kafka', 'auth-metadata'];
const LEFT_OUT = [/\.(spec|int-spec)\.ts$/, /\.d\.ts$/, /^libs\/kafka\/src\/nest\//, /\/test\//];

const stage = join(root, '.data', 'guard-package');
const packageDir = join(root, 'libs', 'revocation-guard');

function* sourcesOf(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* sourcesOf(path);
    else if (entry.name.endsWith('.ts')) yield path;
  }
}

const sources = LIBS.flatMap((lib) => [...sourcesOf(join(root, 'libs', lib, 'src'))]).filter(
  (file) => !LEFT_OUT.some((pattern) => pattern.test(relative(root, file))),
);

async function compile(format: 'cjs' | 'esm'): Promise<void> {
  const outDir = join(stage, 'dist', format);
  await Promise.all(
    sources.map(async (file) => {
      const target = join(outDir, relative(root, file)).replace(/\.ts$/, '.js');
      const { code } = await transformFile(file, {
        ...swc,
        swcrc: false,
        sourceMaps: false,
        filename: file,
        outputPath: target,
        // ES modules name the files they import (`./x.js`, `./dir/index.js`).
        module: format === 'cjs' ? { type: 'commonjs' } : { type: 'es6', resolveFully: true },
      });
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, code);
    }),
  );
  const type = format === 'cjs' ? 'commonjs' : 'module';
  writeFileSync(join(outDir, 'package.json'), `${JSON.stringify({ type })}\n`);
}

/** Declarations by tsc; `@app/*` specifiers made relative, as SWC does for the code. */
function declarations(): void {
  const outDir = join(stage, 'dist', 'types');
  const config = join(stage, 'tsconfig.types.json');
  writeFileSync(
    config,
    JSON.stringify({
      extends: join(root, 'tsconfig.json'),
      compilerOptions: {
        noEmit: false,
        declaration: true,
        emitDeclarationOnly: true,
        rootDir: root,
        outDir,
        types: ['node'],
      },
      include: [],
      files: sources,
    }),
  );
  execFileSync(join(root, 'node_modules', '.bin', 'tsc'), ['-p', config], { stdio: 'inherit' });
  const aliases = Object.entries(tsconfig.compilerOptions.paths).map(([alias, [path = '']]) => ({
    alias,
    target: join(outDir, path.replace(/\.ts$/, '')),
  }));
  for (const file of sourcesOf(outDir)) {
    const text = readFileSync(file, 'utf8').replace(
      /(['"])(@app\/[^'"]+)\1/g,
      (whole, quote: string, spec: string) => {
        const target = aliases.find((entry) => entry.alias === spec)?.target;
        if (target === undefined) return whole;
        const path = relative(dirname(file), target);
        return `${quote}${path.startsWith('.') ? path : `./${path}`}${quote}`;
      },
    );
    writeFileSync(file, text);
  }
}

export async function packGuard(): Promise<string> {
  rmSync(stage, { recursive: true, force: true });
  mkdirSync(stage, { recursive: true });
  await Promise.all([compile('cjs'), compile('esm')]);
  declarations();
  copyFileSync(join(packageDir, 'package.json'), join(stage, 'package.json'));
  copyFileSync(join(packageDir, 'README.md'), join(stage, 'README.md'));
  const out = execFileSync('npm', ['pack', '--json', '--pack-destination', stage], {
    cwd: stage,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [{ filename }] = JSON.parse(out) as [{ filename: string }];
  return join(stage, filename);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.stdout.write(`${await packGuard()}\n`);
}
