// One replay, for bench/guard.mjs: a fresh revocation guard in a process of its own (so the
// memory it holds after the replay is its own, not the benchmark's), started against the topic
// the benchmark filled. Reports over IPC how long `start()` took, what it read, its CPU time
// and its memory before and after, then stops. Not meant to be run by hand:
//   node --expose-gc bench/guard-replay-child.mjs '<json settings>'   (with an IPC channel)
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(import.meta.url), '../..');
const require = createRequire(import.meta.url);

// The benchmark is this process's only reason to live: gone (even killed), so is this.
process.on('disconnect', () => process.exit(1));

const settings = JSON.parse(process.argv[2] ?? '{}');

/** Live memory after two full collections, so that only what is still referenced counts. */
function memory() {
  globalThis.gc();
  globalThis.gc();
  const { heapUsed, heapTotal, rss, external, arrayBuffers } = process.memoryUsage();
  return {
    heap_used: heapUsed,
    heap_total: heapTotal,
    rss,
    external,
    array_buffers: arrayBuffers,
  };
}

async function main() {
  if (!globalThis.gc || !process.send) throw new Error('run by bench/guard.mjs (IPC, --expose-gc)');
  const { createRevocationGuard } = require(
    join(root, 'dist', 'libs', 'revocation-guard', 'src', 'index.js'),
  );
  /** The guard's own log lines, with when they came (ms after `start()` was called). */
  const lines = [];
  let startedAt = 0;
  const note = (level) => (message) => {
    lines.push({ at_ms: Math.round(performance.now() - startedAt), level, message });
    if (level !== 'log') process.stderr.write(`[replay ${settings.run}] ${level}: ${message}\n`);
  };
  const guard = createRevocationGuard({
    serviceName: 'bench-guard',
    instanceId: `replay-${settings.run}`,
    brokers: [settings.brokers],
    topic: settings.topic,
    jwksUrl: settings.jwksUrl,
    issuer: settings.issuer,
    audience: settings.audience,
    accessTokenMaxTtlSeconds: settings.accessTokenMaxTtlSeconds,
    logger: { log: note('log'), warn: note('warn'), error: note('error') },
  });
  const before = memory();

  // Read progress, every 50 ms: when the first message came, and the pace after that.
  const samples = [];
  // Every 10 s a line on stderr, so that a slow or stuck replay shows where it is.
  const sampler = setInterval(() => {
    const { read, total } = guard.health().replay;
    const at = Math.round(performance.now() - startedAt);
    samples.push([at, read]);
    if (samples.length % 200 === 0)
      process.stderr.write(`[replay ${settings.run}] ${at} ms: read ${read} of ${total ?? '?'}\n`);
  }, 50);
  const cpuBefore = process.cpuUsage();
  startedAt = performance.now();
  await guard.start();
  const readyMs = performance.now() - startedAt;
  const cpu = process.cpuUsage(cpuBefore);
  clearInterval(sampler);
  const peakRssBytes = process.resourceUsage().maxRSS * 1024;
  const after = memory();
  const health = guard.health();
  const counted = async (counter) =>
    (await counter.get()).values.map(({ labels, value }) => ({ ...labels, value }));

  const report = {
    ready_ms: readyMs,
    replay: health.replay,
    store: health.store,
    // What the consumer did with each message (applied, unchanged) and what failed the contract.
    events_applied: await counted(guard.metrics.eventsApplied),
    invalid_messages: (await guard.metrics.invalidMessages.get()).values[0]?.value ?? 0,
    cpu_ms: (cpu.user + cpu.system) / 1000,
    memory: { before, after, peak_rss: peakRssBytes },
    first_read_ms: samples.find(([, read]) => read > 0)?.[0],
    samples,
    log: lines,
  };
  // Sent before stopping: the benchmark times the next step from here, not from the exit.
  await new Promise((done) => process.send(report, done));
  await Promise.race([guard.stop(), sleep(10_000)]);
}

try {
  await main();
  process.exit(0);
} catch (error) {
  process.stderr.write(`[replay ${settings.run}] failed: ${error.stack ?? error.message}\n`);
  process.exit(1);
}
