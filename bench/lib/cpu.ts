// CPU time of processes during a measured window (Linux /proc): where the time goes, when the
// load generator, the apps, Kafka and Redis share the same few cores.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { round } from './report.ts';

const clockTicks = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** User + system CPU time of a process in ms, from /proc (Linux); undefined elsewhere. */
export function procCpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces), from field 3 on.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks;
  } catch {
    return undefined;
  }
}

export type CpuSnapshot = ReturnType<typeof cpuSnapshot>;

/** The CPU time of each named process now (this process: `process.pid`). */
export function cpuSnapshot(pids: Record<string, number | undefined>) {
  const cpu = Object.entries(pids).map(([name, pid]) => [name, procCpuMs(pid)] as const);
  return { at: performance.now(), cpu };
}

/**
 * Per process between two snapshots: cores busy and CPU ms per request (a process whose CPU
 * could not be read is left out); `all_cores_busy`, their sum.
 */
export function cpuBetween(before: CpuSnapshot, after: CpuSnapshot, requests: number) {
  const wallMs = after.at - before.at;
  let total = 0;
  const usage: Record<string, CpuUsage | undefined> = {};
  for (const [i, [name, to]] of after.cpu.entries()) {
    const from = before.cpu[i]?.[1];
    if (from === undefined || to === undefined) continue;
    total += to - from;
    usage[name] = {
      cores_busy: round((to - from) / wallMs),
      cpu_ms_per_request: requests > 0 ? round((to - from) / requests, 4) : null,
    };
  }
  return Object.assign(usage, { all_cores_busy: round(total / wallMs) });
}

interface CpuUsage {
  cores_busy: number;
  cpu_ms_per_request: number | null;
}

/** Resident memory of a process in MiB, from /proc (Linux); undefined elsewhere. */
export function procRssMiB(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const kib = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kib === undefined ? undefined : round(Number(kib) / 1024, 1);
  } catch {
    return undefined;
  }
}
