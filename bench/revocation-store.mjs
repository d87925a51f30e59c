// The API guard's in-memory revocation store: bytes held per revoked session with
// 1,000,000 held, and the cost of the check every request makes.
//   node --expose-gc bench/revocation-store.mjs
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { build } from '../scripts/build.mjs';
import { command, machine, round } from './lib/report.mjs';

const root = resolve(fileURLToPath(import.meta.url), '../..');
const ENTRIES = 1_000_000;
const CHECKS = 2_000_000;

function heapUsed() {
  globalThis.gc?.();
  globalThis.gc?.();
  return process.memoryUsage().heapUsed;
}

async function main() {
  if (!globalThis.gc) throw new Error('run with --expose-gc so heap figures are settled');
  await build();
  const require = createRequire(import.meta.url);
  const { RevocationStore } = require(join(root, 'dist/libs/revocation-guard/src/index.js'));
  const { buildRevocationEvent } = require(join(root, 'dist/libs/contracts/src/index.js'));

  const now = Date.now();
  const store = new RevocationStore({ retentionMs: 305_000, now: () => now });
  // Realistic ids: what the session service hands out (`s<shard>_` + 22 base64url characters).
  const sessionId = (i) => `s${i % 16}_${i.toString(36).padStart(22, '0')}`;
  const before = heapUsed();
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
    store.apply(JSON.parse(JSON.stringify(event)));
  }
  const held = heapUsed() - before;

  // Half the checks hit a revoked session, half a live one (the common case).
  const tokens = Array.from({ length: 1024 }, (_, i) => ({
    sub: `u${i}`,
    sid: i % 2 ? sessionId(i * 97) : `s1_live${i}`,
    iat: Math.floor(now / 1000),
  }));
  let revoked = 0;
  const started = performance.now();
  for (let i = 0; i < CHECKS; i += 1) if (store.check(tokens[i & 1023])) revoked += 1;
  const elapsedMs = performance.now() - started;

  const result = {
    entries: store.size().sessions,
    heap_bytes_held: held,
    bytes_per_revoked_session: round(held / ENTRIES, 1),
    check_ns_per_op: round((elapsedMs * 1e6) / CHECKS, 1),
    checks: CHECKS,
    revoked_hits: revoked,
    machine: machine(),
    date: new Date().toISOString(),
    command: command(),
  };
  mkdirSync(join(root, 'bench/results'), { recursive: true });
  writeFileSync(
    join(root, 'bench/results/revocation-store.json'),
    `${JSON.stringify(result, null, 2)}\n`,
  );
  console.log(
    `${result.entries.toLocaleString()} revoked sessions held in ${(held / 1024 ** 2).toFixed(1)} MiB: ` +
      `${result.bytes_per_revoked_session} bytes each; check() ${result.check_ns_per_op} ns per call`,
  );
}

main().catch((error) => {
  console.error(`[bench] ${error.message}`);
  process.exit(1);
});
