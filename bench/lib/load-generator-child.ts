// The load generator's own process (see load-generator.ts): runs autocannon on request from
// its parent, over IPC, one run at a time. Exits when the parent goes away.
import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { percentile, round } from './report.ts';

export interface MeasureRequest {
  url: string;
  path: string;
  connections: number;
  durationS: number;
}

export type ChildRequest =
  { type: 'tokens'; tokens: string[] } | ({ type: 'measure' } & MeasureRequest);
export type ChildReply =
  { id: number; ok: true; result?: Measurement } | { id: number; ok: false; error: string };

export interface Measurement {
  requests_2xx: number;
  non_2xx: number;
  status_codes: Record<string, number>;
  errors: number;
  timeouts: number;
  duration_s: number;
  latency_ms: Record<'p50' | 'p90' | 'p99' | 'max' | 'mean', number | null>;
}

// What is used of autocannon (it has no types of its own).
interface AutocannonRequest {
  method: string;
  headers: Record<string, string>;
}
interface AutocannonResult {
  '2xx': number;
  non2xx: number;
  statusCodeStats?: Record<string, { count: number }>;
  errors: number;
  timeouts: number;
  duration: number;
}
type Autocannon = (options: {
  url: string;
  connections: number;
  duration: number;
  requests?: AutocannonRequest[];
  setupClient?: (client: { setRequests(requests: AutocannonRequest[]): void }) => void;
}) => EventEmitter & PromiseLike<AutocannonResult>;
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

let requests: AutocannonRequest[] = [];

/** The same requests for every connection, each connection starting at its own offset. */
function setupClientFor(connections: number) {
  let next = 0;
  return (client: { setRequests(requests: AutocannonRequest[]): void }) => {
    if (requests.length === 0) return;
    const offset = Math.floor((next++ * requests.length) / connections);
    client.setRequests([...requests.slice(offset), ...requests.slice(0, offset)]);
  };
}

/** Nearest-rank percentiles of latencies in ms, to the microsecond. */
function percentiles(values: number[]): Measurement['latency_ms'] {
  if (values.length === 0) return { p50: null, p90: null, p99: null, max: null, mean: null };
  const sorted = Float64Array.from(values).sort();
  const at = (p: number) => round(percentile(sorted, p), 3);
  const mean = sorted.reduce((sum, ms) => sum + ms, 0) / sorted.length;
  return { p50: at(50), p90: at(90), p99: at(99), max: at(100), mean: round(mean, 3) };
}

async function measure({
  url,
  path,
  connections,
  durationS,
}: MeasureRequest): Promise<Measurement> {
  // autocannon's own histogram keeps whole milliseconds; each response's time is kept here
  // instead (process.hrtime, from the request's write to the response's end).
  const latencies: number[] = [];
  const instance = autocannon({
    url: `${url}${path}`,
    connections,
    duration: durationS,
    ...(requests.length > 0 && { requests, setupClient: setupClientFor(connections) }),
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

async function answer({ id, ...message }: ChildRequest & { id: number }): Promise<void> {
  try {
    if (message.type === 'tokens') {
      requests = message.tokens.map((token) => ({
        method: 'GET',
        headers: { authorization: `Bearer ${token}` },
      }));
      reply({ id, ok: true });
    } else {
      reply({ id, ok: true, result: await measure(message) });
    }
  } catch (error) {
    reply({ id, ok: false, error: error instanceof Error ? error.message : String(error) });
  }
}

process.on('message', (message: ChildRequest & { id: number }) => void answer(message));
process.on('disconnect', () => process.exit(0));
