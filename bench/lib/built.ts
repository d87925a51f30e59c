// The libs as the build compiled them (dist/libs): what the benchmarks measure is the code the
// apps run. Typed from the sources; `npm run build` (or scripts/build.ts) makes them.
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type * as Contracts from '@app/contracts';
import type * as RevocationGuard from '@app/revocation-guard';
import type * as Testing from '@app/testing';
import { root } from './run.ts';

interface Libs {
  contracts: typeof Contracts;
  'revocation-guard': typeof RevocationGuard;
  testing: typeof Testing;
}

const require = createRequire(import.meta.url);

export function builtLib<Name extends keyof Libs>(name: Name): Libs[Name] {
  return require(join(root, 'dist', 'libs', name, 'src', 'index.js')) as Libs[Name];
}
