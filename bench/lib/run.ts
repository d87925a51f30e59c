// What every benchmark that starts processes does around its measurements: a fresh
// .data/bench-* folder, a record of everything it started, a watchdog, and one way out
// (success, error, Ctrl-C, SIGTERM, watchdog) that stops all of it, in order.
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { killAllNow, StopWaiting, waitFor, type ProcessHandle } from '../../scripts/lib/process.ts';

export const root = resolve(import.meta.dirname, '../..');

/** Stop order: clients in this process, then the apps, then what the apps need. */
export const Stage = { client: 0, app: 1, infrastructure: 2 } as const;
export type Stage = (typeof Stage)[keyof typeof Stage];

export const log = (message: string) => process.stderr.write(`[bench] ${message}\n`);

const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error));

type Process = Pick<ProcessHandle, 'pid' | 'isAlive'>;

interface Stopper {
  stage: Stage;
  name: string;
  stop: () => unknown;
  /** A process: killed outright if this process exits without stopping it. */
  handle: Process | undefined;
  /** Why the run cannot go on (an app died), if it cannot. */
  failure: () => string | undefined;
}

/**
 * One benchmark run: the watchdog (`wholeRunMs`) and the signal handlers are armed at once.
 * Register what is started with `track`; `main` runs the measurements and exits.
 */
export class BenchRun {
  /** In start order. */
  private readonly stoppers: Stopper[] = [];
  private stopping: Promise<void> | undefined;
  private abortReason: string | undefined;
  private dir: string | undefined;

  constructor({ wholeRunMs }: { wholeRunMs: number }) {
    process.once('SIGINT', () => void this.abort('interrupted (SIGINT)', 130));
    process.once('SIGTERM', () => void this.abort('terminated (SIGTERM)', 143));
    // Last resort when this process exits any other way; children also run under
    // setpriv --pdeathsig (scripts/lib/process.ts).
    process.once('exit', () => {
      killAllNow(this.processes());
    });
    setTimeout(
      () => void this.abort(`did not finish within ${Math.round(wholeRunMs / 1000)} s`, 1),
      wholeRunMs,
    ).unref();
  }

  get aborted(): string | undefined {
    return this.abortReason;
  }

  /** This run's data folder (`makeDataDir` made it). */
  get dataDir(): string {
    if (this.dir === undefined) throw new Error('makeDataDir() was not called');
    return this.dir;
  }

  /** This run's own .data/bench-* folder: deleted after a success, kept after a failure. */
  makeDataDir(): string {
    mkdirSync(join(root, '.data'), { recursive: true });
    this.dir = mkdtempSync(join(root, '.data', 'bench-'));
    log(`data and logs in ${relative(root, this.dir)}`);
    return this.dir;
  }

  /**
   * Registers something to stop at the end (with `stop`, or its own `stop()`). A process
   * handle (with `pid` and `isAlive`) is also killed outright if this process exits without
   * stopping it; an app that dies, or a system (`crashed()`) one of whose apps dies, fails the
   * run at its next `checkRunning`.
   */
  track<T extends { stop(): unknown }>(stage: Stage, name: string, thing: T): T;
  track<T>(stage: Stage, name: string, thing: T, stop: () => unknown): T;
  track<T>(stage: Stage, name: string, thing: T, stop?: () => unknown): T {
    const it = thing as Partial<Process & { stop(): unknown; crashed(): string | undefined }>;
    const handle = typeof it.isAlive === 'function' ? (it as Process) : undefined;
    this.stoppers.push({
      stage,
      name,
      stop: stop ?? (() => it.stop?.()),
      handle,
      failure: () =>
        it.crashed?.() ??
        (stage === Stage.app && handle && !handle.isAlive() ? `${name} exited` : undefined),
    });
    return thing;
  }

  /**
   * Tracks a child process of this one as a client (stopped first: SIGTERM, SIGKILL after 5 s);
   * resolves `exit` with its code and signal.
   */
  trackChild(name: string, child: ChildProcess) {
    const exit = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    const exited = () => child.exitCode !== null || child.signalCode !== null;
    this.track(Stage.client, name, { pid: child.pid, isAlive: () => !exited() }, async () => {
      if (exited()) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exit;
      clearTimeout(timer);
    });
    return exit;
  }

  /** Throws once the run is aborted or a tracked app has exited: no point going on. */
  checkRunning(what: string): void {
    const problem = this.problem(what);
    if (problem !== undefined) throw new Error(problem);
  }

  /** Polls `done` until true; fails on timeout (saying `progress()`), abort, or a dead app. */
  async until(
    what: string,
    done: () => boolean | Promise<boolean>,
    timeoutMs: number,
    progress: () => string = () => '',
  ): Promise<void> {
    try {
      await waitFor(
        what,
        async () => {
          if (await done()) return true;
          const problem = this.problem(`the wait for ${what}`);
          if (problem !== undefined) throw new StopWaiting(problem);
          return false;
        },
        { timeoutMs, intervalMs: 5 },
      );
    } catch (error) {
      if (error instanceof StopWaiting || !(error instanceof Error)) throw error;
      throw new Error(`${error.message}${progress()}`, { cause: error });
    }
  }

  /** Runs `body`, stops everything, removes the data folder after a success, and exits. */
  async main(body: () => Promise<void>): Promise<never> {
    let exitCode = 0;
    try {
      await body();
    } catch (error) {
      if (this.abortReason === undefined)
        log(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      exitCode = 1;
    }
    await this.stopEverything();
    if (exitCode === 0 && this.dir !== undefined)
      rmSync(this.dir, { recursive: true, force: true });
    else if (this.dir !== undefined) log(`data and logs kept in ${relative(root, this.dir)}`);
    process.exit(exitCode);
  }

  private problem(what: string): string | undefined {
    if (this.abortReason !== undefined) return this.abortReason;
    for (const stopper of this.stoppers) {
      const failure = stopper.failure();
      if (failure !== undefined) return `${failure} during ${what} (see its log)`;
    }
    return undefined;
  }

  private processes(): Process[] {
    return this.stoppers.flatMap((s) => (s.handle ? [s.handle] : []));
  }

  /** Never rejects: each failure to stop is logged. */
  private stopEverything(): Promise<void> {
    this.stopping ??= (async () => {
      for (const stage of [Stage.client, Stage.app, Stage.infrastructure]) {
        // Each stop escalates or is bounded on its own; the bound here is a last resort.
        await Promise.all(
          this.stoppers
            .filter((s) => s.stage === stage)
            .map((s) =>
              Promise.race([
                Promise.resolve()
                  .then(s.stop)
                  .catch((error: unknown) => {
                    log(`stopping ${s.name}: ${errorText(error)}`);
                  }),
                sleep(45_000, undefined, { ref: false }),
              ]),
            ),
        );
      }
    })();
    return this.stopping;
  }

  private async abort(reason: string, code: number): Promise<void> {
    if (this.abortReason !== undefined) {
      // Asked twice: no more waiting.
      killAllNow(this.processes());
      process.exit(code);
    }
    this.abortReason = reason;
    log(`${reason}; stopping everything`);
    await this.stopEverything();
    if (this.dir !== undefined) log(`data and logs kept in ${relative(root, this.dir)}`);
    process.exit(code);
  }
}

export const benchRun = (options: { wholeRunMs: number }): BenchRun => new BenchRun(options);

/** Runs `task(i)` for every i below `count`, `inFlight` at a time: each worker takes the next. */
export async function inParallel(
  count: number,
  inFlight: number,
  task: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, count) }, worker));
}
