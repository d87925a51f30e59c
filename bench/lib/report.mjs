// What every benchmark records beside its figures: the machine, its load, the command.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { join, relative, resolve } from 'node:path';
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

/**
 * The command that produced the figures, as the user typed it; under `npm run bench`
 * (bench/all.mjs), that command and the part of it that ran this benchmark.
 */
export function command() {
  const script = relative(root, process.argv[1] ?? '');
  const raw = ['node', ...process.execArgv, script, ...process.argv.slice(2)].join(' ');
  if (process.env.BENCH_INVOKED_BY) return `${process.env.BENCH_INVOKED_BY} (this part: ${raw})`;
  if (process.env.npm_lifecycle_event) return `npm run ${process.env.npm_lifecycle_event}`;
  return raw;
}

/** Nearest-rank percentiles of `values`, in ms rounded to 0.01; nulls when there are none. */
export function distribution(values) {
  if (values.length === 0) return { p50: null, p95: null, p99: null, max: null };
  const sorted = Float64Array.from(values).sort();
  const at = (p) => round(sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]);
  return { p50: at(50), p95: at(95), p99: at(99), max: at(100) };
}

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The Apache Kafka version the launcher runs (from scripts/kafka/pom.xml). */
export function kafkaVersion() {
  const pom = readFileSync(join(root, 'scripts', 'kafka', 'pom.xml'), 'utf8');
  return /<kafka\.version>([^<]+)<\/kafka\.version>/.exec(pom)?.[1] ?? 'unknown';
}
