// Compiles apps/, libs/ and the benchmarks' TypeScript (bench/) to dist/ with SWC (path aliases
// rewritten to relative paths), and copies the files the code reads at run time (Lua commands).
// Type checking is `tsc --noEmit`, run separately by `npm test`.
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { transformFile } from '@swc/core';

const require = createRequire(import.meta.url);
const { root, ...swcOptions } = require('../swc.config.cjs');
const outDir = join(root, 'dist');
const isTest = (file) => /\.(spec|int-spec|e2e-spec)\.ts$/.test(file);

const isSource = (file) => file.endsWith('.ts') && !file.endsWith('.d.ts') && !isTest(file);
const isAsset = (file) => file.endsWith('.lua');

function* files(dir, wanted) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* files(path, wanted);
    else if (wanted(entry.name)) yield path;
  }
}

export async function build() {
  const started = Date.now();
  rmSync(outDir, { recursive: true, force: true });
  const dirs = ['apps', 'libs', 'bench'].map((dir) => join(root, dir)).filter(existsSync);
  const sources = dirs.flatMap((dir) => [...files(dir, isSource)]);
  const assets = dirs.flatMap((dir) => [...files(dir, isAsset)]);
  for (const asset of assets) {
    const target = join(outDir, relative(root, asset));
    mkdirSync(dirname(target), { recursive: true });
    copyFileSync(asset, target);
  }
  await Promise.all(
    sources.map(async (file) => {
      const target = join(outDir, relative(root, file)).replace(/\.ts$/, '.js');
      const { code, map } = await transformFile(file, {
        ...swcOptions,
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
  console.error(
    `[build] ${sources.length} files compiled and ${assets.length} copied to dist/ in ${Date.now() - started} ms`,
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  build().catch((error) => {
    console.error(`[build] ${error.message}`);
    process.exit(1);
  });
}
