// Types for the test files that import the launcher helpers.
export function freePort(): Promise<number>;
export function waitFor(
  what: string,
  probe: () => unknown,
  options?: { timeoutMs?: number; intervalMs?: number; isAlive?: () => boolean },
): Promise<void>;

export interface ProcessHandle {
  readonly pid: number;
  readonly exit: Promise<{ code: number | null; signal: string | null }>;
  isAlive(): boolean;
  stop(graceMs?: number): Promise<{ code: number | null; signal: string | null }>;
  kill(): Promise<{ code: number | null; signal: string | null }>;
}

/** A server the launchers start: it can also be started again on the same port and data. */
export interface ServiceHandle {
  port: number;
  dataDir: string;
  readonly pid: number;
  isAlive(): boolean;
  stop(): Promise<unknown>;
  kill(): Promise<unknown>;
  restart(): Promise<void>;
}
export function startProcess(
  command: string,
  args: string[],
  options?: {
    logFile?: string;
    prefix?: string;
    env?: NodeJS.ProcessEnv;
    cwd?: string;
    name?: string;
  },
): ProcessHandle;
