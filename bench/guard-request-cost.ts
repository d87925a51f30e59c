// Benchmark: the API guard's cost per request (libs/revocation-guard), issue 5:
// `authenticate()` called in this process, one call after another, each awaited, for cache
// hits, never-seen tokens, a guard without the cache and jose's jwtVerify alone. What it
// starts and measures: bench/README.md ("API guard"). Results in
// bench/results/guard-request-cost.json.
//
//   npm run bench:guard-request-cost   (or: node --expose-gc bench/guard-request-cost.ts)
import { performance } from 'node:perf_hooks';
import { jwtVerify } from 'jose';
import type { GuardOutcome, RevocationGuard } from '@app/revocation-guard';
import { builtLib } from './lib/built.ts';
import {
  AUDIENCE,
  HEARTBEAT_INTERVAL_MS,
  startGuardBench,
  TOPIC_PARTITIONS,
  withTimeout,
} from './lib/guard-bench.ts';
import { envelope, median, n, printSummary, round, writeResults } from './lib/report.ts';
import { benchRun, log, Stage } from './lib/run.ts';

/** What is measured; recorded with the results so runs can be compared. */
const parameters = {
  topic_partitions: TOPIC_PARTITIONS,
  request_rounds: 7,
  /** Per round, for the cheap cases (a cache hit is a map lookup). */
  hit_ops_per_round: 100_000,
  /** Per round, for the cases that verify a signature. */
  verify_ops_per_round: 2_500,
  /** Distinct tokens in the pool the hit and no-cache cases cycle through. */
  token_pool: 1_000,
  /**
   * The cached guard's verified-token cache (the default size), filled before measuring, as on
   * a busy instance: other tokens, then the pool's. Misses then evict the least recently used.
   */
  verified_token_cache_size: 10_000,
  heartbeat_interval_ms: HEARTBEAT_INTERVAL_MS,
  /** The timed loops let timers and I/O run every this many calls (see timeCalls). */
  yield_every_calls: 1_000,
};

/** Every wait is bounded; the watchdog leaves room for the shutdown within 4 minutes. */
const limits = { wholeRunMs: 180_000, guardReadyMs: 30_000 };

const run = benchRun({ wholeRunMs: limits.wholeRunMs });

/**
 * Times `ops` calls made one after another, each awaited; `call(i)` returns the outcome, which
 * must be ok. Returns ns per call.
 */
async function timeCalls(
  what: string,
  ops: number,
  call: (i: number) => Promise<GuardOutcome | { ok: true }>,
) {
  const yieldEvery = parameters.yield_every_calls;
  run.checkRunning(what);
  globalThis.gc?.();
  let failed: GuardOutcome | undefined;
  const started = performance.now();
  for (let i = 0; i < ops; i += 1) {
    const outcome = await call(i);
    if (!outcome.ok) failed ??= outcome;
    // A loop of awaits on settled promises never leaves the microtask queue: let timers and
    // I/O run (the guard's consumer reading heartbeats), as between an API's requests.
    if (i % yieldEvery === yieldEvery - 1) await new Promise(setImmediate);
  }
  const elapsedMs = performance.now() - started;
  if (failed) throw new Error(`${what}: a call was refused: ${JSON.stringify(failed)}`);
  return (elapsedMs * 1e6) / ops;
}

async function verificationCounts(guard: RevocationGuard) {
  const counts = { hit: 0, miss: 0 };
  for (const { labels, value } of (await guard.metrics.verifications.get()).values)
    if (labels.result === 'hit' || labels.result === 'miss') counts[labels.result] = value;
  return counts;
}

type Call = (pass: number, i: number) => Promise<GuardOutcome | { ok: true }>;

/** A case: `call(pass, i)` (the warm-up pass is -1); `guard`'s verifications must all be `expect`. */
const measured = (
  key: string,
  ops: number,
  call: Call,
  counter?: { guard: RevocationGuard; expect: 'hit' | 'miss' },
) => ({ key, ops, call, counter, samples: [] as number[], counted: { hit: 0, miss: 0 } });

await run.main(async () => {
  const wallStart = performance.now();
  const { kafka, issuer, topic, sendHeartbeats } = await startGuardBench(run, 'requests');
  // As the publisher does: a heartbeat on every partition every second, so the view stays fresh.
  await sendHeartbeats();
  const timer = setInterval(() => {
    sendHeartbeats().catch((error: unknown) => {
      log(`heartbeat failed: ${error instanceof Error ? error.message : String(error)}`);
    });
  }, parameters.heartbeat_interval_ms);
  run.track(Stage.client, 'heartbeats', timer, () => {
    clearInterval(timer);
  });

  const warn = (message: string) => {
    log(`guard: ${message}`);
  };
  const guardWith = (label: string, verifiedTokenCacheSize: number) =>
    run.track(
      Stage.client,
      label,
      builtLib('revocation-guard').createRevocationGuard({
        serviceName: 'bench-guard',
        instanceId: label,
        brokers: [kafka.brokers],
        topic,
        jwksUrl: issuer.jwksUrl,
        issuer: issuer.issuer,
        audience: AUDIENCE,
        logger: { log: () => undefined, warn, error: warn },
        verifiedTokenCacheSize,
      }),
    );
  // The default cache (10,000 verified tokens remembered), and no cache: every call verifies.
  const cached = guardWith('guard-cached', parameters.verified_token_cache_size);
  const uncached = guardWith('guard-uncached', 0);
  await withTimeout(
    Promise.all([cached.start(), uncached.start()]),
    limits.guardReadyMs,
    'the request guards to be ready',
  );
  await run.until(
    'the request guards to have a fresh view',
    () => cached.health().freshness.fresh && uncached.health().freshness.fresh,
    limits.guardReadyMs,
  );

  const { request_rounds: rounds, hit_ops_per_round: hitOps } = parameters;
  const verifyOps = parameters.verify_ops_per_round;
  log('signing tokens');
  /** `count` access tokens as the session service issues them, each of its own session. */
  const sign = async (count: number, tag: string) => {
    const tokens: string[] = [];
    for (let i = 0; i < count; i += 100) {
      const chunk = Array.from({ length: Math.min(100, count - i) }, (_, j) =>
        issuer.sign({
          sub: `bench-user-${i + j}`,
          sid: `s${(i + j) % 16}_${tag}${(i + j).toString(36).padStart(20, '0')}`,
        }),
      );
      tokens.push(...(await Promise.all(chunk)));
    }
    return tokens;
  };
  const pool = await sign(parameters.token_pool, 'pool');
  const fresh = await sign((rounds + 1) * verifyOps, 'new');
  const filler = await sign(parameters.verified_token_cache_size - parameters.token_pool, 'fill');
  const bearer = (token: string) => `Bearer ${token}`;
  const poolHeaders = pool.map(bearer);
  const freshHeaders = fresh.map(bearer);
  const at = <T>(list: T[], i: number) => list[i % list.length] as T;

  // The cache filled: other tokens first, then the pool's, which are cache hits from here on.
  for (const header of [...filler.map(bearer), ...poolHeaders]) {
    const outcome = await cached.authenticate(header);
    if (!outcome.ok) throw new Error(`a token was refused: ${JSON.stringify(outcome)}`);
  }
  const cacheEntries = async () => {
    const metric = cached.metrics.registry.getSingleMetric(
      'revocation_guard_verified_token_cache_entries',
    );
    return (await metric?.get())?.values[0]?.value;
  };
  const cacheEntriesBefore = await cacheEntries();
  if (cacheEntriesBefore !== parameters.verified_token_cache_size)
    throw new Error(`the verified-token cache holds ${n(cacheEntriesBefore)} tokens, not full`);

  // For scale: jose's jwtVerify alone, with the checks the guard asks of it.
  const contracts = builtLib('contracts');
  const verifyOptions = {
    algorithms: ['EdDSA'],
    issuer: issuer.issuer,
    audience: AUDIENCE,
    typ: contracts.ACCESS_TOKEN_TYPE,
    requiredClaims: contracts.REQUIRED_ACCESS_TOKEN_CLAIMS,
    clockTolerance: contracts.CLOCK_TOLERANCE_SECONDS,
    maxTokenAge: 300,
  };
  const hit = { guard: cached, expect: 'hit' } as const;
  const plan = [
    measured('hit_same_token', hitOps, () => cached.authenticate(at(poolHeaders, 0)), hit),
    measured('hit_pool', hitOps, (_, i) => cached.authenticate(at(poolHeaders, i)), hit),
    // Each token once: a slice of its own per pass.
    measured(
      'miss_new_tokens',
      verifyOps,
      (pass, i) => cached.authenticate(at(freshHeaders, (pass + 1) * verifyOps + i)),
      { guard: cached, expect: 'miss' },
    ),
    measured('no_cache_pool', verifyOps, (_, i) => uncached.authenticate(at(poolHeaders, i)), {
      guard: uncached,
      expect: 'miss',
    }),
    measured('bare_jwt_verify', verifyOps, async (_, i) => {
      await jwtVerify(at(pool, i), issuer.publicKey, verifyOptions);
      return { ok: true };
    }),
  ];
  // Round after round, every case once per round: a machine whose load changes over time
  // skews every case alike, not the one that happened to run then. Pass -1 warms up.
  for (let pass = -1; pass < rounds; pass += 1) {
    log(pass < 0 ? 'warm-up round' : `round ${pass + 1} of ${rounds}`);
    for (const { key, ops, call, counter, samples, counted } of plan) {
      const before = counter && (await verificationCounts(counter.guard));
      const ns = await timeCalls(key, ops, (i) => call(pass, i));
      if (pass >= 0) samples.push(ns);
      if (!counter || !before) continue;
      const after = await verificationCounts(counter.guard);
      counted.hit += after.hit - before.hit;
      counted.miss += after.miss - before.miss;
    }
  }
  const cases = Object.fromEntries(
    plan.map(({ key, ops, samples, counted, counter }) => {
      const calls = (rounds + 1) * ops;
      if (counter && counted[counter.expect] !== calls)
        throw new Error(
          `${key}: expected ${n(calls)} cache ${counter.expect}es, counted ${JSON.stringify(counted)}`,
        );
      const mid = median(samples);
      const figures = {
        ns_per_op: Math.round(mid),
        ops_per_s: Math.round(1e9 / mid),
        ns_per_op_min: Math.round(Math.min(...samples)),
        ns_per_op_max: Math.round(Math.max(...samples)),
        rounds_ns_per_op: samples.map((value) => Math.round(value)),
        ops_per_round: ops,
        ...(counter && { verifications: counted }),
      };
      return [key, figures];
    }),
  );
  const nsPerOp = (key: string) => cases[key]?.ns_per_op ?? NaN;
  const ratio = (a: string, b: string, digits = 1) => round(nsPerOp(a) / nsPerOp(b), digits);
  const results = {
    request: {
      cases,
      ratios: {
        miss_vs_hit: ratio('miss_new_tokens', 'hit_pool'),
        no_cache_vs_hit: ratio('no_cache_pool', 'hit_pool'),
        miss_vs_bare_jwt_verify: ratio('miss_new_tokens', 'bare_jwt_verify', 2),
      },
      token_bytes: at(pool, 0).length,
      verified_token_cache_entries: { before: cacheEntriesBefore, after: await cacheEntries() },
    },
    ...envelope({ kafka: true }),
    parameters,
    wall_time_s: Math.round((performance.now() - wallStart) / 1000),
  };
  const file = writeResults('guard-request-cost.json', results);

  const m = results.machine;
  const us = (ns: number | undefined) => `${((ns ?? NaN) / 1000).toFixed(2)} µs`;
  const line = (label: string, key: string) => {
    const c = cases[key];
    return `    ${label.padEnd(44)} ${us(c?.ns_per_op).padStart(10)}/op  ${n(c?.ops_per_s).padStart(9)} ops/s  (rounds ${us(c?.ns_per_op_min)}–${us(c?.ns_per_op_max)})`;
  };
  const { ratios } = results.request;
  printSummary([
    `API guard, cost per request (${m.cpus} × ${m.cpu_model}, Node ${m.node}, load ${m.load_average_1_5_15m.join(' ')})`,
    `  authenticate(), one call after another, median of ${rounds} rounds:`,
    line('cache hit, same token', 'hit_same_token'),
    line(`cache hit, pool of ${n(parameters.token_pool)} tokens`, 'hit_pool'),
    line('cache miss, never-seen token (EdDSA verify)', 'miss_new_tokens'),
    line('cache size 0, pool tokens', 'no_cache_pool'),
    line('bare jose jwtVerify (reference)', 'bare_jwt_verify'),
    `    miss / hit ${ratios.miss_vs_hit} ×; no cache / hit ${ratios.no_cache_vs_hit} ×; miss / bare verify ${ratios.miss_vs_bare_jwt_verify} ×`,
    `Results: ${file} (${results.wall_time_s} s)`,
  ]);
});
