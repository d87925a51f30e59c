// `npm run stack`: the whole system on this machine — Apache Kafka (KRaft, one node), Redis,
// and every app as its own process — then prints where each listens. With
// STACK_TOPOLOGY=cluster: three Kafka brokers and a Redis Cluster (3 primaries, 3 replicas). Ctrl-C or SIGTERM stops
// everything, apps first, then Kafka and Redis. Configuration: see README.md ("The local stack").
//
// `npm run start:dev -- <app>` (`stack.ts --watch <app>`): the same, and `<app>` is rebuilt
// and restarted whenever a file under apps/ or libs/ changes.
import { rmSync, watch, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { build } from './build.ts';
import { envInt } from './lib/process.ts';
import {
  APPS,
  DEV_IDP_NAME,
  portVar,
  root,
  SSF_CLIENT_ID,
  startSystem,
  type AppName,
  type RunningSystem,
} from './system.ts';

const env = process.env;
const dataDir = resolve(env.STACK_DATA_DIR ?? join(root, '.data', 'stack'));
const logsToStdout = env.STACK_LOGS === 'stdout';
const log = (message: string) => process.stderr.write(`[stack] ${message}\n`);

let system: RunningSystem | undefined;
let stopping = false;
async function stopAll(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    log('stopping apps, then Kafka and Redis…');
    await system?.stop();
    log('stopped');
  }
  process.exit(code);
}
// A second Ctrl-C (or SIGTERM) while stopping kills everything at once: process.exit runs the
// launchers' exit hook, which SIGKILLs what they started. Left to the default action instead,
// the signal would end this process alone, and a broker of a cluster whose quorum is gone can
// wait forever on its own shutdown.
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.on(signal, () => {
    if (!stopping) {
      void stopAll(0);
      return;
    }
    log(`${signal} again: killing everything now`);
    process.exit(1);
  });

/** `--watch <app>`: the app to rebuild and restart on every change, validated. */
function watchedApp(): AppName | undefined {
  const at = process.argv.indexOf('--watch');
  if (at === -1) return undefined;
  const name = process.argv[at + 1];
  const app = APPS.find((candidate) => candidate.name === name);
  if (!app)
    throw new Error(
      `--watch needs an app: npm run start:dev -- <${APPS.map((a) => a.name).join(' | ')}>`,
    );
  return app.name;
}

/** Rebuilds and restarts every instance of `name` after each burst of changes (300 ms quiet). */
function watchAndRestart(running: RunningSystem, name: AppName): void {
  let timer: NodeJS.Timeout | undefined;
  let busy = Promise.resolve();
  const restart = async () => {
    const started = Date.now();
    try {
      await build({ clean: false });
    } catch (error) {
      log(`build failed, ${name} keeps running the previous build: ${String(error)}`);
      return;
    }
    for (const app of running.instances(name)) {
      await running.stopApp(app);
      await running.restartApp(app);
    }
    log(`${name} rebuilt and restarted in ${Date.now() - started} ms`);
  };
  for (const dir of ['apps', 'libs'])
    watch(join(root, dir), { recursive: true }, (_event, file) => {
      if (!file?.endsWith('.ts') && !file?.endsWith('.lua')) return;
      clearTimeout(timer);
      timer = setTimeout(() => {
        busy = busy.then(restart).catch((error: unknown) => {
          log(`restart of ${name} failed: ${String(error)}`);
        });
      }, 300);
    });
  log(`watching apps/ and libs/: ${name} restarts on every change`);
}

/** STACK_TOPOLOGY: `single` (default: one broker, one Redis) or `cluster`. */
function topology(): 'single' | 'cluster' {
  const value = env.STACK_TOPOLOGY ?? '';
  if (value === '' || value === 'single') return 'single';
  if (value === 'cluster') return 'cluster';
  throw new Error(`STACK_TOPOLOGY must be "single" or "cluster", got "${value}"`);
}

async function main(): Promise<void> {
  const watched = watchedApp();
  const shape = topology();
  const apiInstances = envInt('API_INSTANCES', 1, { min: 1 });
  const instances = {
    'content-api': apiInstances,
    'account-api': apiInstances,
    gateway: envInt('GATEWAY_INSTANCES', 1, { min: 1 }),
  };
  if (env.STACK_FRESH === '1' || env.STACK_FRESH === 'true')
    rmSync(dataDir, { recursive: true, force: true });
  await build();

  const started = Date.now();
  // Empty counts as unset, so `KAFKA_BROKERS= npm run stack` starts the stack's own broker;
  // and unset it is for the apps too (they inherit this environment and refuse an empty URL).
  const brokers = env.KAFKA_BROKERS ?? '';
  const redisUrl = env.REDIS_URL ?? '';
  if (env.KAFKA_BROKERS === '') delete env.KAFKA_BROKERS;
  if (env.REDIS_URL === '') delete env.REDIS_URL;
  if (shape === 'cluster')
    log(
      'STACK_TOPOLOGY=cluster: three Kafka brokers and a Redis Cluster of six nodes, on free ports (KAFKA_PORT and REDIS_PORT apply to the single topology)',
    );
  system = await startSystem({
    dataDir: shape === 'cluster' ? join(dataDir, 'cluster') : dataDir,
    topology: shape,
    instances,
    ports: Object.fromEntries(APPS.map((app) => [app.name, envInt(portVar(app.name), app.port)])),
    kafka: brokers ? { brokers } : { port: envInt('KAFKA_PORT', 9092) },
    redis: redisUrl ? { url: redisUrl } : { port: envInt('REDIS_PORT', 6380) },
    env: (app): Record<string, string> =>
      app === 'session-service' ? { SEED_DEMO_USERS: env.SEED_DEMO_USERS ?? 'true' } : {},
    logs: logsToStdout ? 'stdout' : 'files',
    log,
  });
  const running = system;
  running.onCrash((message) => {
    if (stopping) return;
    if (watched) {
      log(`${message}; fix the code and save: it restarts`);
      return;
    }
    log(`${message} unexpectedly; stopping the stack`);
    void stopAll(1);
  });

  const kafkaRows = (): [string, string, number | undefined][] =>
    running.kafkaCluster
      ? running.kafkaCluster.nodes.map((node) => [`kafka-${node.nodeId}`, node.brokers, node.pid])
      : [[running.kafka ? 'kafka' : 'kafka (given)', running.brokers, running.kafka?.pid]];
  const redisRows = (): [string, string, number | undefined][] =>
    running.redisCluster
      ? running.redisCluster.members.map((member, i) => [`redis-${i + 1}`, member.url, member.pid])
      : [[running.redis ? 'redis' : 'redis (given)', running.redisUrl, running.redis?.pid]];
  const rows: [string, string, number | undefined][] = [
    ...kafkaRows(),
    ...redisRows(),
    ...running.apps.map((app): [string, string, number | undefined] => [
      app.label,
      app.url,
      app.pid,
    ]),
  ];
  const width = Math.max(...rows.map(([name]) => name.length));
  process.stdout.write(`\nStack ready in ${((Date.now() - started) / 1000).toFixed(1)} s:\n`);
  for (const [name, where, pid] of rows)
    process.stdout.write(`  ${name.padEnd(width)}  ${where}${pid ? `  (pid ${pid})` : ''}\n`);
  if (running.devIdpUrl)
    process.stdout.write(
      `\nSingle sign-on: the console's "Sign in with ${DEV_IDP_NAME}" goes through the dev OpenID provider at ${running.devIdpUrl} (demo users, development only).\n`,
    );
  if (running.ssfUrl)
    process.stdout.write(
      `SSF transmitter: ${running.ssfUrl}/.well-known/ssf-configuration; management client "${SSF_CLIENT_ID}", Authorization: Bearer ${running.ssfToken} (made up for this run).\n`,
    );
  process.stdout.write(
    `\nLogs: ${logsToStdout ? 'above' : running.logDir}. Ctrl-C stops everything.\n`,
  );
  if (env.STACK_STATE_FILE) {
    const state = {
      brokers: running.brokers,
      redisUrl: running.redisUrl,
      ...(running.redisClusterNodes && { redisClusterNodes: running.redisClusterNodes }),
      processes: rows.map(([name, url, pid]) => ({ name, url, pid: pid ?? null })),
    };
    writeFileSync(env.STACK_STATE_FILE, JSON.stringify(state, null, 2));
  }
  if (watched) watchAndRestart(running, watched);
}

main().catch(async (error: unknown) => {
  log(`could not start: ${error instanceof Error ? error.message : String(error)}`);
  await stopAll(1);
});
