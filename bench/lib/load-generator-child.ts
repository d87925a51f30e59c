// The load generator's own process (see load-generator.ts): runs autocannon on request from
// its parent, over IPC, one run at a time. Exits when the parent goes away.
import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { percentile, round } from './report.ts';

export interface MeasureRequest {
  url: string;
  path: string;
  /** The requests' headers, one set per request, sent in turn (none: a bare GET). */
  headers: Record<string, string>[];
  connections: number;
  durationS: number;
}
export type Measurement = Awaited<ReturnType<typeof measure>>;
export type ChildReply = { ok: true; result: Measurement } | { ok: false; error: string };

// What is used of autocannon (it has no types of its own).
type Request = { method: string; headers: Record<string, string> };
type Result = { '2xx': number; non2xx: number; errors: number; timeouts: number; duration: number };
const autocannon = createRequire(import.meta.url)('autocannon') as (
  options: object,
) => EventEmitter & PromiseLike<Result & { statusCodeStats?: Record<string, { count: number }> }>;

/** The same requests for every connection, each connection starting at its own offset. */
function setupClientFor(requests: Request[], connections: number) {
  let next = 0;
  return (client: { setRequests(requests: Request[]): void }) => {
    if (requests.length === 0) return;
    const offset = Math.floor((next++ * requests.length) / connections);
    client.setRequests([...requests.slice(offset), ...requests.slice(0, offset)]);
  };
}

/** Nearest-rank percentiles of latencies in ms, to the microsecond. */
function percentiles(values: number[]) {
  if (values.length === 0) return { p50: null, p90: null, p99: null, max: null, mean: null };
  const sorted = Float64Array.from(values).sort();
  const at = (p: number) => round(percentile(sorted, p), 3);
  const mean = sorted.reduce((sum, ms) => sum + ms, 0) / sorted.length;
  return { p50: at(50), p90: at(90), p99: at(99), max: at(100), mean: round(mean, 3) };
}

async function measure({ url, path, headers, connections, durationS }: MeasureRequest) {
  const requests = headers.map((set) => ({ method: 'GET', headers: set }));
  // autocannon's own histogram keeps whole milliseconds; each response's time is kept here
  // instead (process.hrtime, from the request's write to the response's end).
  const latencies: number[] = [];
  const instance = autocannon({
    url: `${url}${path}`,
    connections,
    duration: durationS,
    ...(requests.length > 0 && { requests, setupClient: setupClientFor(requests, connections) }),
  });
  instance.on('response', (_client, _status, _bytes, responseTime: number) =>
    latencies.push(responseTime),
  );
  const result = await instance;
  return {
    requests_2xx: result['2xx'],
    non_2xx: result.non2xx,
    status_codes: Object.fromEntries(
      Object.entries(result.statusCodeStats ?? {}).map(([code, { count }]) => [code, count]),
    ),
    errors: result.errors,
    timeouts: result.timeouts,
    duration_s: result.duration,
    latency_ms: percentiles(latencies),
  };
}

const reply = (message: ChildReply) => process.send?.(message);

async function answer(request: MeasureRequest): Promise<void> {
  try {
    reply({ ok: true, result: await measure(request) });
  } catch (error) {
    reply({ ok: false, error: error instanceof Error ? error.message : String(error) });
  }
}

process.on('message', (message: MeasureRequest) => void answer(message));
process.on('disconnect', () => process.exit(0));
