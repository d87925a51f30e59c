// Stops what global-setup.ts started, once the last project using it is done.
import { rmSync } from 'node:fs';
import type { TestInfraState } from './global-setup';

export default async function globalTeardown(): Promise<void> {
  const state = (globalThis as { __testInfra?: TestInfraState }).__testInfra;
  if (!state) return;
  state.users -= 1;
  if (state.users > 0) return;
  await Promise.all(state.handles.map((handle) => handle.stop()));
  state.handles.length = 0;
  if (state.dataDir && !process.env.KEEP_TEST_DATA)
    rmSync(state.dataDir, { recursive: true, force: true });
}
