// What every benchmark that starts processes does around its measurements: a fresh
// .data/bench-* folder, a record of everything it started, a watchdog, and one way out
// (success, error, Ctrl-C, SIGTERM, watchdog) that stops all of it, in order.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { killAllNow } from '../../scripts/lib/process.mjs';

export const root = resolve(fileURLToPath(import.meta.url), '../../..');

/** Stop order: clients in this process, then the apps, then what the apps need. */
export const Stage = { client: 0, app: 1, infrastructure: 2 };

export const log = (message) => process.stderr.write(`[bench] ${message}\n`);

async function settle(promise, timeoutMs) {
  await Promise.race([
    Promise.resolve(promise).catch(() => undefined),
    sleep(timeoutMs, undefined, { ref: false }),
  ]);
}

/**
 * Sets up one benchmark run: the watchdog (`wholeRunMs`) and the signal handlers are armed at
 * once. Register what is started with `track`; `main` runs the measurements and exits.
 */
export function benchRun({ wholeRunMs }) {
  /** { stage, name, stop(), handle? } in start order. */
  const stoppers = [];
  let stopping;
  let abortReason;
  let dataDir;

  const processHandles = () => stoppers.map((s) => s.handle).filter(Boolean);

  function stopEverything() {
    stopping ??= (async () => {
      for (const stage of [Stage.client, Stage.app, Stage.infrastructure]) {
        // Each stop escalates or is bounded on its own; the bound here is a last resort.
        await Promise.all(
          stoppers
            .filter((s) => s.stage === stage)
            .map((s) =>
              settle(
                Promise.resolve()
                  .then(s.stop)
                  .catch((error) => log(`stopping ${s.name}: ${error.message}`)),
                45_000,
              ),
            ),
        );
      }
    })();
    return stopping;
  }

  async function abort(reason, code) {
    if (abortReason !== undefined) {
      // Asked twice: no more waiting.
      killAllNow(processHandles());
      process.exit(code);
    }
    abortReason = reason;
    log(`${reason}; stopping everything`);
    await stopEverything().catch(() => undefined);
    if (dataDir !== undefined) log(`data and logs kept in ${relative(root, dataDir)}`);
    process.exit(code);
  }

  process.once('SIGINT', () => void abort('interrupted (SIGINT)', 130));
  process.once('SIGTERM', () => void abort('terminated (SIGTERM)', 143));
  // Last resort when this process exits any other way; children also run under
  // setpriv --pdeathsig (scripts/lib/process.mjs).
  process.once('exit', () => killAllNow(processHandles()));
  setTimeout(
    () => void abort(`did not finish within ${Math.round(wholeRunMs / 1000)} s`, 1),
    wholeRunMs,
  ).unref();

  const run = {
    get aborted() {
      return abortReason;
    },
    get dataDir() {
      return dataDir;
    },

    /** This run's own .data/bench-* folder: deleted after a success, kept after a failure. */
    makeDataDir() {
      mkdirSync(join(root, '.data'), { recursive: true });
      dataDir = mkdtempSync(join(root, '.data', 'bench-'));
      log(`data and logs in ${relative(root, dataDir)}`);
      return dataDir;
    },

    /**
     * Registers something to stop at the end. A process handle (with `pid`, `isAlive`, `stop`)
     * is also killed outright if this process exits without stopping it, and an app that dies
     * fails the run at its next `checkRunning`.
     */
    track(stage, name, thing, stop = () => thing.stop()) {
      const handle = thing && typeof thing.isAlive === 'function' ? thing : undefined;
      stoppers.push({ stage, name, stop, handle });
      return thing;
    },

    /** Throws once the run is aborted or a tracked app has exited: no point going on. */
    checkRunning(what) {
      if (abortReason !== undefined) throw new Error(abortReason);
      const dead = stoppers.find((s) => s.stage === Stage.app && s.handle && !s.handle.isAlive());
      if (dead) throw new Error(`${dead.name} exited during ${what} (see its log)`);
    },

    /** Polls `done` until true; fails on timeout, abort, or a dead app. */
    async until(what, done, timeoutMs, progress = () => '') {
      const deadline = Date.now() + timeoutMs;
      while (!(await done())) {
        run.checkRunning(`the wait for ${what}`);
        if (Date.now() > deadline)
          throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${progress()}`);
        await sleep(5);
      }
    },

    /** Runs `body`, stops everything, removes the data folder after a success, and exits. */
    async main(body) {
      let exitCode = 0;
      try {
        await body();
      } catch (error) {
        if (abortReason === undefined)
          log(`failed: ${error instanceof Error ? (error.stack ?? error.message) : error}`);
        exitCode = 1;
      } finally {
        await stopEverything().catch((error) => log(`stopping: ${error.message}`));
      }
      if (dataDir !== undefined && exitCode === 0)
        rmSync(dataDir, { recursive: true, force: true });
      else if (dataDir !== undefined) log(`data and logs kept in ${relative(root, dataDir)}`);
      process.exit(exitCode);
    },
  };
  return run;
}
