// Small process helpers shared by the Kafka and Redis launchers, the stack and the tests.
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';

/** Resolves with a TCP port that was free on 127.0.0.1 a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** Polls `probe` until it resolves truthy; rejects with the last error after `timeoutMs`. */
export async function waitFor(what, probe, { timeoutMs = 60_000, intervalMs = 200, isAlive } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  while (Date.now() < deadline) {
    if (isAlive && !isAlive()) throw new Error(`${what}: process exited while starting`);
    try {
      if (await probe()) return;
    } catch (error) {
      lastError = error;
    }
    await sleep(intervalMs);
  }
  const reason = lastError instanceof Error ? `: ${lastError.message}` : '';
  throw new Error(`${what} not ready after ${timeoutMs} ms${reason}`);
}

// On Linux, util-linux's setpriv asks the kernel to send SIGTERM to a child when its parent
// dies, even by SIGKILL: a killed test run or stack never leaves a broker or Redis behind.
const setpriv =
  process.platform === 'linux' &&
  spawnSync('setpriv', ['--help'], { stdio: 'ignore' }).status === 0;

/**
 * Starts a long-running child process. Its output goes to `logFile`, or to this process's
 * stdout with each line prefixed by `[prefix]`, or is inherited.
 * Returns a handle whose `stop()` sends SIGTERM, then SIGKILL after `graceMs`.
 */
export function startProcess(command, args, { logFile, prefix, env, cwd, name = command } = {}) {
  const piped = Boolean(logFile || prefix);
  const [file, argv] = setpriv
    ? ['setpriv', ['--pdeathsig', 'TERM', '--', command, ...args]]
    : [command, args];
  const child = spawn(file, argv, {
    cwd,
    env: env ?? process.env,
    stdio: ['ignore', piped ? 'pipe' : 'inherit', piped ? 'pipe' : 'inherit'],
  });
  if (logFile) {
    mkdirSync(dirname(logFile), { recursive: true });
    const out = createWriteStream(logFile, { flags: 'a' });
    child.stdout.pipe(out);
    child.stderr.pipe(out);
  } else if (prefix) {
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on('line', (line) =>
        process.stdout.write(`[${prefix}] ${line}\n`),
      );
    }
  }
  let exited = false;
  const exit = new Promise((resolve) => {
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
    /** Graceful stop; resolves when the process has exited. */
    async stop(graceMs = 15_000) {
      if (exited) return exit;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const result = await exit;
      clearTimeout(timer);
      return result;
    },
    /** Abrupt stop, as a crash would be. */
    async kill() {
      if (exited) return exit;
      child.kill('SIGKILL');
      return exit;
    },
  };
}

/** Kills every handle synchronously: for `process.on('exit')`, where nothing async runs. */
export function killAllNow(handles) {
  for (const handle of handles) {
    if (handle?.isAlive()) {
      try {
        process.kill(handle.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}
