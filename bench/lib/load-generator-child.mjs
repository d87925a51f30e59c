// The load generator's own process (see load-generator.mjs): runs autocannon on request from
// its parent, over IPC, one run at a time. Exits when the parent goes away.
import autocannon from 'autocannon';

let requests = [];

/** The same requests for every connection, each connection starting at its own offset. */
function setupClientFor(connections) {
  let next = 0;
  return (client) => {
    if (requests.length === 0) return;
    const offset = Math.floor((next++ * requests.length) / connections);
    client.setRequests([...requests.slice(offset), ...requests.slice(0, offset)]);
  };
}

/** Nearest-rank percentiles of latencies in ms, to the microsecond. */
function percentiles(values) {
  if (values.length === 0) return { p50: null, p90: null, p99: null, max: null, mean: null };
  const sorted = Float64Array.from(values).sort();
  const at = (p) => sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];
  const r = (ms) => Math.round(ms * 1000) / 1000;
  const mean = sorted.reduce((sum, ms) => sum + ms, 0) / sorted.length;
  return { p50: r(at(50)), p90: r(at(90)), p99: r(at(99)), max: r(at(100)), mean: r(mean) };
}

async function measure({ url, path, connections, durationS }) {
  // autocannon's own histogram keeps whole milliseconds; each response's time is kept here
  // instead (process.hrtime, from the request's write to the response's end).
  const latencies = [];
  const instance = autocannon({
    url: `${url}${path}`,
    connections,
    duration: durationS,
    ...(requests.length > 0 && { requests, setupClient: setupClientFor(connections) }),
  });
  instance.on('response', (_client, _status, _bytes, responseTime) => latencies.push(responseTime));
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

process.on('message', async ({ id, type, ...message }) => {
  try {
    if (type === 'tokens') {
      requests = message.tokens.map((token) => ({
        method: 'GET',
        headers: { authorization: `Bearer ${token}` },
      }));
      process.send({ id, ok: true });
    } else if (type === 'measure') {
      process.send({ id, ok: true, result: await measure(message) });
    }
  } catch (error) {
    process.send({ id, ok: false, error: error instanceof Error ? error.message : String(error) });
  }
});
process.on('disconnect', () => process.exit(0));
