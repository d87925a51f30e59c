// Starts one real Kafka broker and one real Redis for the whole Jest run (shared by the
// integration and end-to-end projects), unless KAFKA_BROKERS / REDIS_URL point at running ones.
// Test workers inherit the addresses through process.env.
import { mkdtempSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startKafka } from '../../scripts/kafka/kafka.mjs';
import { freePort, killAllNow } from '../../scripts/lib/process.mjs';
import { startRedis } from '../../scripts/redis/redis.mjs';

const root = resolve(fileURLToPath(import.meta.url), '../../..');
const state = (globalThis.__testInfra ??= { users: 0, handles: [], dataDir: undefined });

export default async function globalSetup() {
  state.users += 1;
  if (state.users > 1) return; // the other project already started them

  const log = (message) => process.stderr.write(`${message}\n`);
  mkdirSync(join(root, '.data'), { recursive: true });
  state.dataDir = mkdtempSync(join(root, '.data', 'test-'));
  // Whatever happens to this process, the broker and Redis do not outlive it.
  process.once('exit', () => killAllNow(state.handles));

  const started = Date.now();
  const track = (handle) => {
    state.handles.push(handle);
    return handle;
  };
  const [kafka, redis] = await Promise.all([
    process.env.KAFKA_BROKERS
      ? undefined
      : startKafka({ port: await freePort(), dataDir: join(state.dataDir, 'kafka'), log }).then(
          track,
        ),
    process.env.REDIS_URL
      ? undefined
      : startRedis({ dataDir: join(state.dataDir, 'redis'), appendfsync: 'always', log }).then(
          track,
        ),
  ]).catch(async (error) => {
    // One may have started while the other failed: stop it before reporting.
    await Promise.all(state.handles.splice(0).map((handle) => handle.stop()));
    throw error;
  });
  if (kafka) process.env.KAFKA_BROKERS = kafka.brokers;
  if (redis) process.env.REDIS_URL = redis.url;
  process.env.TEST_DATA_DIR = state.dataDir;
  log(
    `\n[test infra] Kafka ${process.env.KAFKA_BROKERS}${kafka ? '' : ' (given)'}, ` +
      `Redis ${process.env.REDIS_URL}${redis ? '' : ' (given)'}, ready in ${Date.now() - started} ms`,
  );
}
