// Compiles apps/, libs/ and the benchmarks' TypeScript (bench/) to dist/ with SWC (path aliases
// rewritten to relative paths).
// Type checking is `tsc --noEmit`, run separately by `npm test`.
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { transformFile } from '@swc/core';

const require = createRequire(import.meta.url);
const { root, ...swcOptions } = require('../swc.config.cjs');
const outDir = join(root, 'dist');
const isTest = (file) => /\.(spec|int-spec|e2e-spec)\.ts$/.test(file);

function* sources(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* sources(path);
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') && !isTest(entry.name))
      yield path;
  }
}

export async function build() {
  const started = Date.now();
  rmSync(outDir, { recursive: true, force: true });
  const files = ['apps', 'libs', 'bench']
    .map((dir) => join(root, dir))
    .filter((dir) => existsSync(dir))
    .flatMap((dir) => [...sources(dir)]);
  await Promise.all(
    files.map(async (file) => {
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
  console.error(`[build] ${files.length} files to dist/ in ${Date.now() - started} ms`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  build().catch((error) => {
    console.error(`[build] ${error.message}`);
    process.exit(1);
  });
}
