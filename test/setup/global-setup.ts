// Starts one real Kafka broker and one real Redis for the whole Jest run (shared by the
// integration and end-to-end projects), unless KAFKA_BROKERS / REDIS_URL point at running ones.
// Test workers inherit the addresses through process.env.
import { mkdirSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { startKafka } from '../../scripts/kafka/kafka.ts';
import { allStarted, freePort, killAllNow, type ServiceHandle } from '../../scripts/lib/process.ts';
import { startRedis } from '../../scripts/redis/redis.ts';
import { root } from '../../scripts/system.ts';

export interface TestInfraState {
  users: number;
  handles: ServiceHandle[];
  dataDir: string | undefined;
}

const scope = globalThis as { __testInfra?: TestInfraState };
const state = (scope.__testInfra ??= { users: 0, handles: [], dataDir: undefined });

export default async function globalSetup(): Promise<void> {
  state.users += 1;
  if (state.users > 1) return; // the other project already started them

  const log = (message: string) => process.stderr.write(`${message}\n`);
  mkdirSync(join(root, '.data'), { recursive: true });
  const dataDir = mkdtempSync(join(root, '.data', 'test-'));
  state.dataDir = dataDir;
  // Whatever happens to this process, the broker and Redis do not outlive it.
  process.once('exit', () => {
    killAllNow(state.handles);
  });

  const started = Date.now();
  const track = <T extends ServiceHandle>(handle: T): T => {
    state.handles.push(handle);
    return handle;
  };
  const [kafka, redis] = await allStarted([
    process.env.KAFKA_BROKERS
      ? undefined
      : freePort().then((port) =>
          startKafka({ port, dataDir: join(dataDir, 'kafka'), log }).then(track),
        ),
    process.env.REDIS_URL
      ? undefined
      : startRedis({ dataDir: join(dataDir, 'redis'), appendfsync: 'always', log }).then(track),
  ]).catch(async (error: unknown) => {
    // One may have started while the other failed: stop it before reporting.
    await Promise.all(state.handles.splice(0).map((handle) => handle.stop()));
    throw error;
  });
  if (kafka) process.env.KAFKA_BROKERS = kafka.brokers;
  if (redis) process.env.REDIS_URL = redis.url;
  process.env.TEST_DATA_DIR = dataDir;
  log(
    `\n[test infra] Kafka ${process.env.KAFKA_BROKERS ?? ''}${kafka ? '' : ' (given)'}, ` +
      `Redis ${process.env.REDIS_URL ?? ''}${redis ? '' : ' (given)'}, ready in ${Date.now() - started} ms`,
  );
}
