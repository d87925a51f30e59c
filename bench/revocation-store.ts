// The API guard's in-memory revocation store: bytes held (heap and array buffers) per revoked session with
// 1,000,000 held, and the cost of the check every request makes.
//   node --expose-gc bench/revocation-store.ts
import { performance } from 'node:perf_hooks';
import { build } from '../scripts/build.ts';
import { builtLib } from './lib/built.ts';
import { envelope, round, writeResults } from './lib/report.ts';

const ENTRIES = 1_000_000;
const CHECKS = 2_000_000;

/** Heap used and array buffers (where SessionIdSet keeps the revoked sessions), settled. */
function bytesHeld(): number {
  globalThis.gc?.();
  globalThis.gc?.();
  const { heapUsed, arrayBuffers } = process.memoryUsage();
  return heapUsed + arrayBuffers;
}

async function main(): Promise<void> {
  if (!globalThis.gc) throw new Error('run with --expose-gc so heap figures are settled');
  await build();
  const { RevocationStore } = builtLib('revocation-guard');
  const { buildRevocationEvent } = builtLib('contracts');

  const now = Date.now();
  const store = new RevocationStore({ retentionMs: 305_000, now: () => now });
  // Realistic ids: what the session service hands out (`s<shard>_` + 22 base64url characters).
  const sessionId = (i: number) => `s${i % 16}_${i.toString(36).padStart(22, '0')}`;
  const before = bytesHeld();
  for (let i = 0; i < ENTRIES; i += 1) {
    const event = buildRevocationEvent({
      issuer: 'i',
      userId: `u${i}`,
      sessionId: sessionId(i),
      initiatingEntity: 'user',
      reason: 'user_logout',
      at: now,
    });
    // Through JSON, as consumers get events from Kafka: flat strings, nothing else retained.
    store.apply(JSON.parse(JSON.stringify(event)) as typeof event);
  }
  const held = bytesHeld() - before;

  // Half the checks hit a revoked session, half a live one (the common case).
  const tokens = Array.from({ length: 1024 }, (_, i) => ({
    sub: `u${i}`,
    sid: i % 2 ? sessionId(i * 97) : `s1_live${i}`,
    iat: Math.floor(now / 1000),
  }));
  type Token = (typeof tokens)[number];
  let revoked = 0;
  const started = performance.now();
  for (let i = 0; i < CHECKS; i += 1) if (store.check(tokens[i & 1023] as Token)) revoked += 1;
  const elapsedMs = performance.now() - started;

  const result = {
    entries: store.size().sessions,
    bytes_held: held,
    bytes_per_revoked_session: round(held / ENTRIES, 1),
    check_ns_per_op: round((elapsedMs * 1e6) / CHECKS, 1),
    checks: CHECKS,
    revoked_hits: revoked,
    ...envelope(),
  };
  writeResults('revocation-store.json', result);
  console.log(
    `${result.entries.toLocaleString()} revoked sessions held in ${(held / 1024 ** 2).toFixed(1)} MiB: ` +
      `${result.bytes_per_revoked_session} bytes each; check() ${result.check_ns_per_op} ns per call`,
  );
}

main().catch((error: unknown) => {
  console.error(`[bench] ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
