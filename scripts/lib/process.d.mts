// Types for the test files that import the launcher helpers.
export function freePort(): Promise<number>;
export function waitFor(
  what: string,
  probe: () => unknown,
  options?: { timeoutMs?: number; intervalMs?: number; isAlive?: () => boolean },
): Promise<void>;
