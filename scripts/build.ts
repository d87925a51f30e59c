// Compiles apps/, libs/ and the apps the benchmarks run (bench/overhead-app) to dist/ with SWC (path aliases
// rewritten to relative paths), copies the files the code reads at run time (Lua commands), and
// bundles the gateway's web console (apps/gateway/web) for browsers with esbuild.
// Type checking is `tsc --noEmit`, run separately by `npm test`.
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { transformFile, type JscConfig, type Options } from '@swc/core';
import { build as bundle } from 'esbuild';

const require = createRequire(import.meta.url);
const { root, ...swcOptions } = require('../swc.config.cjs') as Options & { root: string };
const outDir = join(root, 'dist');
/** The web console's sources: browser code, bundled by esbuild rather than compiled by SWC. */
const webDir = join(root, 'apps', 'gateway', 'web');
const isTest = (file: string) => /\.(spec|int-spec|e2e-spec)\.ts$/.test(file);

const isSource = (file: string) => file.endsWith('.ts') && !file.endsWith('.d.ts') && !isTest(file);
const isAsset = (file: string) => file.endsWith('.lua');

function* files(dir: string, wanted: (name: string) => boolean): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* files(path, wanted);
    else if (wanted(entry.name)) yield path;
  }
}

/**
 * A clean build is written beside dist/ and swapped in at the end, so apps, tests or
 * benchmarks running from dist/ meanwhile never see it half-empty. `clean: false` (watch
 * mode) writes over dist/ in place.
 */
export async function build({ clean = true }: { clean?: boolean } = {}): Promise<void> {
  const started = Date.now();
  const into = clean ? `${outDir}.build-${process.pid}` : outDir;
  if (clean) rmSync(into, { recursive: true, force: true });
  // Of bench/ and scripts/, only what the built code runs: the benchmarks' overhead app and
  // the process helpers libs/testing uses; the rest runs as .ts under Node.
  const dirs = ['apps', 'libs', 'bench/overhead-app', 'scripts/lib']
    .map((dir) => join(root, dir))
    .filter(existsSync);
  const sources = dirs
    .flatMap((dir) => [...files(dir, isSource)])
    .filter((file) => !file.startsWith(`${webDir}/`));
  const assets = dirs.flatMap((dir) => [...files(dir, isAsset)]);
  for (const asset of assets) {
    const target = join(into, relative(root, asset));
    mkdirSync(dirname(target), { recursive: true });
    copyFileSync(asset, target);
  }
  await Promise.all(
    sources.map(async (file) => {
      const target = join(into, relative(root, file)).replace(/\.ts$/, '.js');
      const { code, map } = await transformFile(file, {
        ...swcOptions,
        // Scripts name the files they import (`./process.ts`, as Node runs them); compiled
        // code names the compiled file. (Jest runs the sources, so it keeps the names.)
        // (@swc/core 1.15 supports the option; its types do not name it yet.)
        jsc: { ...swcOptions.jsc, rewriteRelativeImportExtensions: true } as JscConfig,
        swcrc: false,
        filename: file,
        outputPath: target,
        sourceFileName: relative(dirname(target), file),
      });
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(
        target,
        map ? `${code}\n//# sourceMappingURL=${target.split('/').pop()}.map\n` : code,
      );
      if (map) writeFileSync(`${target}.map`, map);
    }),
  );
  await buildConsole(join(into, relative(root, webDir)));
  if (clean) swapIn(into);
  console.error(
    `[build] ${sources.length} files compiled and ${assets.length} copied to dist/ in ${Date.now() - started} ms`,
  );
}

/** The console's page, and its script and stylesheet under assets/ (nothing from a CDN). */
async function buildConsole(out: string): Promise<void> {
  mkdirSync(out, { recursive: true });
  copyFileSync(join(webDir, 'index.html'), join(out, 'index.html'));
  await bundle({
    entryPoints: [join(webDir, 'src', 'console.tsx'), join(webDir, 'src', 'console.css')],
    entryNames: '[name]',
    outdir: join(out, 'assets'),
    bundle: true,
    minify: true,
    sourcemap: 'linked',
    format: 'esm',
    target: 'es2022',
    jsx: 'automatic',
    jsxImportSource: 'preact',
    logLevel: 'warning',
  });
}

/** Replaces dist/ by `staging`. Another build that swapped its own in first wins; same sources. */
function swapIn(staging: string): void {
  const old = `${outDir}.old-${process.pid}`;
  if (existsSync(outDir)) renameSync(outDir, old);
  try {
    renameSync(staging, outDir);
  } catch {
    rmSync(staging, { recursive: true, force: true });
  }
  rmSync(old, { recursive: true, force: true });
}

if (process.argv[1] === import.meta.filename) {
  build().catch((error: unknown) => {
    console.error(`[build] ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  });
}
