// One replay, for bench/guard-replay.ts: a fresh revocation guard in a process of its own (so
// the memory it holds after the replay is its own, not the benchmark's), started against the
// topic the benchmark filled. Reports over IPC how long `start()` took, what it read, its CPU
// time and its memory before and after, then stops. Not meant to be run by hand:
//   node --expose-gc bench/guard-replay-child.ts '<json settings>'   (with an IPC channel)
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type * as RevocationGuardLib from '@app/revocation-guard';
import type { RevocationGuardOptions } from '@app/revocation-guard';
import { builtLib } from './lib/built.ts';
import { round } from './lib/report.ts';

export interface ReplaySettings {
  run: number;
  guard: Omit<RevocationGuardOptions, 'serviceName' | 'instanceId' | 'logger'>;
  /** A dist/ folder other than the build's (BENCH_REPLAY_BASELINE_DIST): the guard it holds. */
  distDir?: string;
}
export type ReplayReport = Awaited<ReturnType<typeof replay>>['report'];

// The benchmark is this process's only reason to live: gone (even killed), so is this.
process.on('disconnect', () => process.exit(1));

const settings = JSON.parse(process.argv[2] ?? '{}') as ReplaySettings;
const say = (line: string) => process.stderr.write(`[replay ${settings.run}] ${line}\n`);

/** Live memory after two full collections, so that only what is still referenced counts. */
function memory() {
  globalThis.gc?.();
  globalThis.gc?.();
  const { heapUsed, heapTotal, rss, external, arrayBuffers } = process.memoryUsage();
  return { heap_used: heapUsed, heap_total: heapTotal, rss, external, array_buffers: arrayBuffers };
}

/** The guard library as built in dist/, or in the copy of another build. */
function guardLib(distDir: string | undefined): typeof RevocationGuardLib {
  if (distDir === undefined) return builtLib('revocation-guard');
  const index = join(distDir, 'libs', 'revocation-guard', 'src', 'index.js');
  return createRequire(import.meta.url)(index) as typeof RevocationGuardLib;
}

async function replay({ run, guard: options, distDir }: ReplaySettings) {
  /** The guard's own log lines, with when they came (ms after `start()` was called). */
  const guardLog: { at_ms: number; level: string; message: string }[] = [];
  let startedAt = 0;
  const note = (level: string) => (message: string) => {
    guardLog.push({ at_ms: Math.round(performance.now() - startedAt), level, message });
    if (level !== 'log') say(`${level}: ${message}`);
  };
  const guard = guardLib(distDir).createRevocationGuard({
    ...options,
    serviceName: 'bench-guard',
    instanceId: `replay-${run}`,
    logger: { log: note('log'), warn: note('warn'), error: note('error') },
  });
  const before = memory();
  // Read progress, every 50 ms: when the first message came, and the pace after that. Every
  // 10 s a line on stderr, so that a slow or stuck replay shows where it is.
  const samples: [number, number][] = [];
  /** The largest memory figures seen meanwhile: where the peak RSS comes from. */
  const largest = { rss: 0, heap_total: 0, heap_used: 0, external: 0, array_buffers: 0 };
  const sampler = setInterval(() => {
    const { read, total } = guard.health().replay;
    const at = Math.round(performance.now() - startedAt);
    samples.push([at, read]);
    const { rss, heapTotal, heapUsed, external, arrayBuffers } = process.memoryUsage();
    largest.rss = Math.max(largest.rss, rss);
    largest.heap_total = Math.max(largest.heap_total, heapTotal);
    largest.heap_used = Math.max(largest.heap_used, heapUsed);
    largest.external = Math.max(largest.external, external);
    largest.array_buffers = Math.max(largest.array_buffers, arrayBuffers);
    if (samples.length % 200 === 0) say(`${at} ms: read ${read} of ${total ?? '?'}`);
  }, 50);
  const cpuBefore = process.cpuUsage();
  startedAt = performance.now();
  await guard.start();
  const readyMs = performance.now() - startedAt;
  const cpu = process.cpuUsage(cpuBefore);
  clearInterval(sampler);
  const peakRss = process.resourceUsage().maxRSS * 1024;
  const after = memory();
  const { replay: progress, store } = guard.health();
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const heapGrowth = after.heap_used - before.heap_used;
  // The store's revoked sessions are in typed arrays (SessionIdSet): off the heap, in array buffers.
  const heldGrowth = heapGrowth + after.array_buffers - before.array_buffers;
  // The pace once messages flow: from the first sample with anything read to the end.
  const first = samples.find(([, read]) => read > 0);
  const flowingMs = first && readyMs - first[0];
  const { eventsApplied, invalidMessages } = guard.metrics;
  const report = {
    run,
    ready_ms: Math.round(readyMs),
    guard_reported_replay_ms: progress.durationMs,
    messages_read: progress.read,
    messages_in_window: progress.total,
    events_per_s: Math.round(progress.read / (readyMs / 1000)),
    first_message_after_ms: first?.[0],
    events_per_s_once_flowing:
      first && flowingMs ? Math.round((progress.read - first[1]) / (flowingMs / 1000)) : undefined,
    revoked_sessions_held: store.sessions,
    users_revoked_held: store.users,
    heap_growth_bytes: heapGrowth,
    held_growth_bytes: heldGrowth,
    rss_growth_bytes: after.rss - before.rss,
    peak_rss_bytes: peakRss,
    bytes_per_revoked_session: round(heldGrowth / store.sessions, 1),
    memory_before: before,
    memory_after: after,
    /** The largest of each figure in the samples taken every 50 ms during the replay. */
    memory_largest_sampled: largest,
    // What the consumer did with each message (applied, unchanged), and what failed the contract.
    events_applied: (await eventsApplied.get()).values.map(({ labels, value }) => ({
      ...labels,
      value,
    })),
    invalid_messages: (await invalidMessages.get()).values[0]?.value ?? 0,
    guard_cpu_ms: Math.round(cpuMs),
    guard_cpu_share: round(cpuMs / readyMs, 2),
    /** The broker's CPU time meanwhile: the benchmark's to fill in (null survives IPC). */
    broker_cpu_ms: null as number | null | undefined,
    /** Messages read after each whole second since `start()`. */
    read_by_second: samples
      .filter(([at], i, all) => Math.floor(at / 1000) !== Math.floor((all[i + 1]?.[0] ?? 0) / 1000))
      .map(([at, read]) => ({ at_s: Math.floor(at / 1000), read })),
    guard_log: guardLog,
  };
  return { guard, report };
}

try {
  if (!globalThis.gc || !process.send)
    throw new Error('run by bench/guard-replay.ts (IPC, --expose-gc)');
  const { guard, report } = await replay(settings);
  // Sent before stopping: the benchmark times the next step from here, not from the exit.
  await new Promise<void>((resolve, reject) => {
    process.send?.(report, (error: Error | null) => {
      if (error) reject(error);
      else resolve();
    });
  });
  await Promise.race([guard.stop(), sleep(10_000)]);
  process.exit(0);
} catch (error) {
  say(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exit(1);
}
