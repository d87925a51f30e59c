// `npm run stack`: the whole system on this machine — Apache Kafka (KRaft, one node), Redis,
// and every app as its own process — then prints where each listens. Ctrl-C or SIGTERM stops
// everything, apps first, then Kafka and Redis. Configuration: see README.md ("The local stack").
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { APPS, root, startApp, wiringEnv } from './apps.mjs';
import { build } from './build.mjs';
import { startKafka } from './kafka/kafka.mjs';
import { killAllNow } from './lib/process.mjs';
import { startRedis } from './redis/redis.mjs';

const env = process.env;
const int = (name, fallback) => {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0)
    throw new Error(`${name} must be a non-negative integer, got "${raw}"`);
  return value;
};

const config = {
  instances: int('API_INSTANCES', 1),
  kafkaPort: int('KAFKA_PORT', 9092),
  redisPort: int('REDIS_PORT', 6380),
  dataDir: resolve(env.STACK_DATA_DIR ?? join(root, '.data', 'stack')),
  logsToStdout: env.STACK_LOGS === 'stdout',
  fresh: env.STACK_FRESH === '1' || env.STACK_FRESH === 'true',
  stateFile: env.STACK_STATE_FILE,
};
if (config.instances < 1) throw new Error('API_INSTANCES must be at least 1');

const log = (message) => process.stderr.write(`[stack] ${message}\n`);
const handles = [];
let stopping = false;

async function stopAll(code) {
  if (stopping) return;
  stopping = true;
  log('stopping apps, then Kafka and Redis…');
  const apps = handles.filter((h) => h.kind === 'app');
  await Promise.all(apps.map((h) => h.stop(10_000)));
  await Promise.all(handles.filter((h) => h.kind !== 'app').map((h) => h.stop()));
  log('stopped');
  process.exit(code);
}
process.once('SIGINT', () => void stopAll(0));
process.once('SIGTERM', () => void stopAll(0));
process.once('exit', () => killAllNow(handles));

async function main() {
  if (config.fresh) rmSync(config.dataDir, { recursive: true, force: true });
  mkdirSync(config.dataDir, { recursive: true });
  await build();

  const started = Date.now();
  // Empty counts as unset, so `KAFKA_BROKERS= npm run stack` starts the stack's own broker.
  let brokers = env.KAFKA_BROKERS || undefined;
  let redisUrl = env.REDIS_URL || undefined;
  const track = (kind) => (handle) => {
    handles.push(Object.assign(handle, { kind, label: kind }));
    return handle;
  };
  const [kafka, redis] = await Promise.all([
    brokers
      ? undefined
      : startKafka({ port: config.kafkaPort, dataDir: join(config.dataDir, 'kafka'), log }).then(
          track('kafka'),
        ),
    redisUrl
      ? undefined
      : startRedis({ port: config.redisPort, dataDir: join(config.dataDir, 'redis'), log }).then(
          track('redis'),
        ),
  ]);
  brokers ??= kafka.brokers;
  redisUrl ??= redis.url;
  log(`Kafka ${brokers} and Redis ${redisUrl} up in ${Date.now() - started} ms; starting apps`);

  const sessionServiceUrl = `http://127.0.0.1:${int('SESSION_SERVICE_PORT', 3000)}`;
  const launches = APPS.flatMap((app) => {
    const count = app.scalable ? config.instances : 1;
    const firstPort = int(app.portVar, app.port);
    return Array.from({ length: count }, (_, i) => {
      const label = count > 1 ? `${app.name}-${i + 1}` : app.name;
      return startApp({
        name: app.name,
        label,
        port: firstPort + i,
        env: wiringEnv({
          name: app.name,
          instanceId: label,
          brokers,
          redisUrl,
          sessionServiceUrl,
          seedDemoUsers: env.SEED_DEMO_USERS ?? 'true',
        }),
        logFile: config.logsToStdout ? undefined : join(config.dataDir, 'logs', `${label}.log`),
      }).then((handle) => {
        handles.push(Object.assign(handle, { kind: 'app' }));
        handle.exit.then(({ code, signal }) => {
          if (!stopping) {
            log(
              `${label} exited unexpectedly (code ${code}, signal ${signal}); stopping the stack`,
            );
            void stopAll(1);
          }
        });
        return handle;
      });
    });
  });
  // Wait for every launch to settle, so a failure stops all the apps that did start.
  const settled = await Promise.allSettled(launches);
  const failed = settled.find((result) => result.status === 'rejected');
  if (failed) throw failed.reason;
  const apps = settled.map((result) => result.value);

  const rows = [
    ...(kafka ? [['kafka', brokers, kafka.pid]] : [['kafka (given)', brokers, '']]),
    ...(redis ? [['redis', redisUrl, redis.pid]] : [['redis (given)', redisUrl, '']]),
    ...apps.map((app) => [app.label, app.url, app.pid]),
  ];
  const width = Math.max(...rows.map(([name]) => name.length));
  process.stdout.write(`\nStack ready in ${((Date.now() - started) / 1000).toFixed(1)} s:\n`);
  for (const [name, where, pid] of rows)
    process.stdout.write(`  ${name.padEnd(width)}  ${where}${pid ? `  (pid ${pid})` : ''}\n`);
  process.stdout.write(
    `\nLogs: ${config.logsToStdout ? 'above' : join(config.dataDir, 'logs')}. Ctrl-C stops everything.\n`,
  );
  if (config.stateFile) {
    writeFileSync(
      config.stateFile,
      JSON.stringify(
        {
          brokers,
          redisUrl,
          processes: rows.map(([name, url, pid]) => ({ name, url, pid: pid || null })),
        },
        null,
        2,
      ),
    );
  }
}

main().catch(async (error) => {
  log(`could not start: ${error instanceof Error ? error.message : String(error)}`);
  await stopAll(1);
});
