// What every benchmark records beside its figures: the machine, its load, the command.
import os from 'node:os';
import { relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(import.meta.url), '../../..');

export function round(value, digits = 2) {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

export function machine() {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpu_model: cpus[0]?.model.trim() ?? 'unknown',
    total_memory_gib: round(os.totalmem() / 1024 ** 3),
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    // Other work on the machine skews every figure; this shows whether there was any.
    load_average_1_5_15m: os.loadavg().map((load) => round(load)),
  };
}

/** The command that produced the figures, as the user typed it. */
export function command() {
  if (process.env.npm_lifecycle_event) return `npm run ${process.env.npm_lifecycle_event}`;
  const script = relative(root, process.argv[1] ?? '');
  return ['node', ...process.execArgv, script, ...process.argv.slice(2)].join(' ');
}
