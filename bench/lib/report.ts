// What every benchmark records beside its figures: the machine, its load, the command.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';

const root = resolve(import.meta.dirname, '../..');

/**
 * Milliseconds since the epoch with sub-millisecond precision and no jumps during the run:
 * comparable, within a millisecond, to Date.now() stamps such as Kafka message timestamps.
 */
export const clock = () => performance.timeOrigin + performance.now();

export function round(value: number, digits = 2): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

/** A count for people to read: 1,234,567 (`?` when there is none). */
export const n = (value: number | null | undefined): string =>
  value === null || value === undefined ? '?' : value.toLocaleString('en-US');

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
 * (bench/all.ts), that command and the part of it that ran this benchmark.
 */
export function command(): string {
  const script = relative(root, process.argv[1] ?? '');
  const raw = ['node', ...process.execArgv, script, ...process.argv.slice(2)].join(' ');
  if (process.env.BENCH_INVOKED_BY) return `${process.env.BENCH_INVOKED_BY} (this part: ${raw})`;
  if (process.env.npm_lifecycle_event) return `npm run ${process.env.npm_lifecycle_event}`;
  return raw;
}

/** The nearest-rank `p`th percentile of ascending `sorted` (not empty). */
export function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

type Percentile = 'p50' | 'p95' | 'p99' | 'max';
export type Distribution = Record<Percentile, number | null>;

/** Nearest-rank percentiles of `values`, in ms rounded to 0.01; nulls when there are none. */
export function distribution(values: readonly number[]): Distribution {
  if (values.length === 0) return { p50: null, p95: null, p99: null, max: null };
  const sorted = Float64Array.from(values).sort();
  const at = (p: number) => round(percentile(sorted, p));
  return { p50: at(50), p95: at(95), p99: at(99), max: at(100) };
}

/** `dist`'s figures as results fields: `<prefix>p50_ms`, … `<prefix>max_ms`. */
export function msFields<P extends string = ''>(dist: Distribution, prefix = '' as P) {
  const fields = Object.entries(dist).map(([p, value]) => [`${prefix}${p}_ms`, value]);
  return Object.fromEntries(fields) as Record<`${P}${Percentile}_ms`, number | null>;
}

/** A distribution on one line: `p50 … ms   p95 … ms   p99 … ms   max … ms`. */
export const formatMs = ({ p50, p95, p99, max }: Distribution): string =>
  `p50 ${p50} ms   p95 ${p95} ms   p99 ${p99} ms   max ${max} ms`;

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const at = (i: number) => sorted[i] ?? NaN;
  return sorted.length % 2 === 1 ? at(mid) : (at(mid - 1) + at(mid)) / 2;
}

/** The Apache Kafka version the launcher runs (from scripts/kafka/pom.xml). */
export function kafkaVersion(): string {
  const pom = readFileSync(join(root, 'scripts', 'kafka', 'pom.xml'), 'utf8');
  return /<kafka\.version>([^<]+)<\/kafka\.version>/.exec(pom)?.[1] ?? 'unknown';
}

/** What every results file records beside its figures (`kafka`: and the Kafka version). */
export function envelope({ kafka = false } = {}) {
  return {
    machine: machine(),
    ...(kafka && { kafka_version: kafkaVersion() }),
    date: new Date().toISOString(),
    command: command(),
  };
}

/** Prints a benchmark's summary on stdout, between blank lines. */
export function printSummary(lines: string[]): void {
  process.stdout.write(['', ...lines, ''].join('\n'));
}

/** Writes `results` as bench/results/<file> (pretty JSON); returns its path from the repository. */
export function writeResults(file: string, results: unknown): string {
  const path = join(root, 'bench', 'results', file);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(results, null, 2)}\n`);
  return relative(root, path);
}
