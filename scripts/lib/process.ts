// Small process helpers shared by the Kafka and Redis launchers, the system launcher, the
// tests and the benchmarks.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Ports this process handed out. The kernel may give the same port to the next bind to port 0
 * once the probe let go of it, so two launchers starting side by side (a Kafka node's
 * controller, a Redis node) could each be told the same "free" port: the second to bind fails.
 */
const handedOut = new Set<number>();

/** Resolves with a TCP port that was free on 127.0.0.1 a moment ago, and never before handed
 * out by this process. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = await anyFreePort();
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('no free port that was not handed out before');
}

function anyFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        resolve(typeof address === 'object' && address ? address.port : 0);
      });
    });
  });
}

/** Whether `port` can be bound on 127.0.0.1 right now. */
function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => {
      resolve(false);
    });
    server.listen(port, '127.0.0.1', () =>
      server.close(() => {
        resolve(true);
      }),
    );
  });
}

// Linux hands out ports from 32768 up to outgoing connections (ip_local_port_range), so a
// port found free there can be taken by any client's connection a moment later; a run of
// consecutive ports is picked below that range instead.
const RUN_LOW = 20_000;
const RUN_HIGH = 32_768;

/**
 * The first of `count` consecutive TCP ports that were all free on 127.0.0.1 a moment ago,
 * for an app whose instances take the ports after its first. Picked below the ephemeral
 * range, where no outgoing connection lands.
 */
export async function freePortRun(count: number): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const first = RUN_LOW + Math.floor(Math.random() * (RUN_HIGH - RUN_LOW - count));
    let free = true;
    for (let port = first; free && port < first + count; port++)
      free = !handedOut.has(port) && (await canListen(port));
    if (free) {
      for (let port = first; port < first + count; port++) handedOut.add(port);
      return first;
    }
  }
  throw new Error(`no run of ${count} free ports between ${RUN_LOW} and ${RUN_HIGH}`);
}

/** Thrown by a `waitFor` probe to stop waiting at once: the awaited thing can no longer happen. */
export class StopWaiting extends Error {
  override readonly name = 'StopWaiting';
}

export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** Checked before each probe: a process that died will never become ready. */
  isAlive?: () => boolean;
}

/**
 * Polls `probe` until it returns something other than `undefined` or `false`, and returns it;
 * rejects naming `what` (and the probe's last error) after `timeoutMs`, or at once when the
 * probe throws `StopWaiting` or `isAlive` turns false. A bounded wait, not a timing claim:
 * the one poller of the launchers, the tests (`eventually`) and the benchmarks.
 */
export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  { timeoutMs = 60_000, intervalMs = 200, isAlive }: WaitOptions = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (isAlive && !isAlive()) throw new Error(`${what}: process exited while starting`);
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      if (error instanceof StopWaiting) throw error;
      lastError = error;
    }
    await sleep(intervalMs);
  }
  const reason = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${reason}`);
}

/** An integer from the environment: `fallback` when unset or empty, an error naming it when not. */
export function envInt(name: string, fallback: number, { min = 0 }: { min?: number } = {}): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min)
    throw new Error(`${name} must be an integer of at least ${min}, got "${raw}"`);
  return value;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ProcessHandle {
  readonly name: string;
  readonly pid: number | undefined;
  readonly child: ChildProcess;
  readonly exit: Promise<Exit>;
  readonly isAlive: () => boolean;
  /** Graceful stop: SIGTERM, then SIGKILL after `graceMs`; resolves when the process exited. */
  stop(graceMs?: number): Promise<Exit>;
  /** Abrupt stop, as a crash would be. */
  kill(): Promise<Exit>;
}

/** A server the launchers start: it can also be started again on the same port and data. */
export interface ServiceHandle {
  readonly port: number;
  readonly dataDir: string;
  readonly pid: number | undefined;
  readonly isAlive: () => boolean;
  stop(): Promise<unknown>;
  kill(): Promise<unknown>;
  restart(): Promise<void>;
}

/**
 * A server process that can be stopped (SIGTERM, SIGKILL after `graceMs`), killed, and
 * started again by `launch` on the same port and data.
 */
export async function restartable(
  launch: () => Promise<ProcessHandle>,
  { port, dataDir, graceMs }: { port: number; dataDir: string; graceMs: number },
): Promise<ServiceHandle> {
  let proc = await launch();
  return {
    port,
    dataDir,
    get pid() {
      return proc.pid;
    },
    isAlive: () => proc.isAlive(),
    stop: () => proc.stop(graceMs),
    kill: () => proc.kill(),
    async restart() {
      if (proc.isAlive()) await proc.stop(graceMs);
      proc = await launch();
    },
  };
}

/**
 * A launcher's command-line use: starts the server, says where it is, stops it on SIGINT or
 * SIGTERM; an error that prevents the start exits 1 with its message.
 */
export function runInForeground(
  name: string,
  start: () => Promise<ServiceHandle & { url: string }>,
) {
  start()
    .then((server) => {
      console.log(`${name} ready on ${server.url} (data in ${server.dataDir}); Ctrl-C stops it`);
      const shutdown = () => void server.stop().then(() => process.exit(0));
      process.once('SIGINT', shutdown);
      process.once('SIGTERM', shutdown);
    })
    .catch((error: unknown) => {
      console.error(`[${name}] ${error instanceof Error ? error.message : String(error)}`);
      process.exit(1);
    });
}

export interface StartProcessOptions {
  /** Output appended to this file; otherwise to this process's stdout as `[prefix] line`. */
  logFile?: string | undefined;
  prefix?: string | undefined;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  name?: string;
}

// On Linux, util-linux's setpriv asks the kernel to send SIGTERM to a child when its parent
// dies, even by SIGKILL: a killed test run or stack never leaves a broker or Redis behind.
const setpriv =
  process.platform === 'linux' &&
  spawnSync('setpriv', ['--help'], { stdio: 'ignore' }).status === 0;

/**
 * Starts a long-running child process. Its output goes to `logFile`, or to this process's
 * stdout with each line prefixed by `[prefix]`, or is inherited.
 */
export function startProcess(
  command: string,
  args: string[],
  { logFile, prefix, env, cwd, name = command }: StartProcessOptions = {},
): ProcessHandle {
  const piped = Boolean(logFile ?? prefix);
  const [file, argv] = setpriv
    ? ['setpriv', ['--pdeathsig', 'TERM', '--', command, ...args]]
    : [command, args];
  const child = spawn(file, argv, {
    cwd,
    env: env ?? process.env,
    stdio: ['ignore', piped ? 'pipe' : 'inherit', piped ? 'pipe' : 'inherit'],
  });
  const streams = [child.stdout, child.stderr].filter((stream) => stream !== null);
  if (logFile) {
    mkdirSync(dirname(logFile), { recursive: true });
    const out = createWriteStream(logFile, { flags: 'a' });
    for (const stream of streams) stream.pipe(out);
  } else if (prefix) {
    for (const stream of streams)
      createInterface({ input: stream }).on('line', (line) =>
        process.stdout.write(`[${prefix}] ${line}\n`),
      );
  }
  let exited = false;
  const exit = new Promise<Exit>((resolve) => {
    child.on('exit', (code, signal) => {
      exited = true;
      resolve({ code, signal });
    });
  });
  child.on('error', (error) => {
    console.error(`[${name}] failed to start: ${error.message}`);
  });
  return {
    name,
    pid: child.pid,
    child,
    exit,
    isAlive: () => !exited,
    async stop(graceMs = 15_000) {
      if (exited) return exit;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const result = await exit;
      clearTimeout(timer);
      return result;
    },
    async kill() {
      if (exited) return exit;
      child.kill('SIGKILL');
      return exit;
    },
  };
}

/** Kills every handle synchronously: for `process.on('exit')`, where nothing async runs. */
export function killAllNow(handles: Iterable<{ pid: number | undefined; isAlive(): boolean }>) {
  for (const handle of handles) {
    if (handle.pid === undefined || !handle.isAlive()) continue;
    try {
      process.kill(handle.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Settles every promise, then throws the first failure: so one failed start still lets the
 * others finish starting, to be tracked and stopped. */
export async function allStarted<T extends readonly unknown[]>(
  starts: readonly [...T],
): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const settled: PromiseSettledResult<unknown>[] = await Promise.allSettled(starts);
  const failed = settled.find((result) => result.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((result) => (result as PromiseFulfilledResult<unknown>).value) as {
    -readonly [K in keyof T]: Awaited<T[K]>;
  };
}
