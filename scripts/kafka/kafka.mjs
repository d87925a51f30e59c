// Starts one Apache Kafka 4 node (KRaft, combined broker + controller) on loopback,
// from the jars Maven resolves into scripts/kafka/target/lib (cached in ~/.m2).
//
// As a module: `startKafka(options)` resolves once the admin API answers.
// As a command: `node scripts/kafka/kafka.mjs` runs a broker in the foreground
// until SIGINT/SIGTERM (KAFKA_PORT, KAFKA_CONTROLLER_PORT, KAFKA_DATA_DIR).
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';
import { freePort, startProcess, waitFor } from '../lib/process.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const libDir = join(here, 'target', 'lib');

/** Broker settings for a single local node; docker-compose.yml mirrors them. */
export const singleNodeSettings = {
  'num.partitions': '1',
  'auto.create.topics.enable': 'false',
  'offsets.topic.replication.factor': '1',
  'offsets.topic.num.partitions': '10',
  'transaction.state.log.replication.factor': '1',
  'transaction.state.log.min.isr': '1',
  'share.coordinator.state.topic.replication.factor': '1',
  'share.coordinator.state.topic.min.isr': '1',
  'group.initial.rebalance.delay.ms': '0',
  'log.retention.check.interval.ms': '60000',
};

/** Copies the broker's jars from Maven (from ~/.m2 after the first time) when the pom changed. */
export function ensureKafkaJars({ log = console.error } = {}) {
  const pom = readFileSync(join(here, 'pom.xml'));
  const digest = createHash('sha256').update(pom).digest('hex');
  const stamp = join(libDir, '.pom-sha256');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === digest) return libDir;
  log('[kafka] copying Apache Kafka jars with Maven (downloaded once, then taken from ~/.m2)');
  rmSync(libDir, { recursive: true, force: true });
  try {
    execFileSync(
      'mvn',
      [
        '-q',
        '-B',
        '-f',
        join(here, 'pom.xml'),
        'dependency:copy-dependencies',
        `-DoutputDirectory=${libDir}`,
        '-DincludeScope=runtime',
      ],
      { stdio: ['ignore', 'inherit', 'inherit'] },
    );
  } catch (error) {
    throw new Error(
      `Maven could not resolve the Kafka jars (is mvn on PATH, Java 17+ installed?): ${error.message}`,
      { cause: error },
    );
  }
  writeFileSync(stamp, digest);
  return libDir;
}

/** A KRaft cluster id: a base64url-encoded UUID (22 characters), never starting with '-'
 * (the storage tool's argument parser would take it for an option). */
export function kraftClusterId() {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (/^[A-Za-z0-9]/.test(id)) return id;
  }
}

function writeProperties(file, props) {
  writeFileSync(
    file,
    Object.entries(props)
      .map(([k, v]) => `${k}=${v}`)
      .join('\n') + '\n',
  );
}

/**
 * Starts a broker. Reuses `dataDir` when it holds a formatted log (a restart keeps topics and
 * offsets), formats it otherwise.
 * @returns {Promise<{ brokers: string, port: number, dataDir: string, stop(): Promise<unknown>, kill(): Promise<unknown>, restart(): Promise<void> }>}
 */
export async function startKafka({
  port = 9092,
  controllerPort,
  dataDir = join(root, '.data', 'kafka'),
  heap = '512m',
  log = console.error,
  readyTimeoutMs = 90_000,
} = {}) {
  ensureKafkaJars({ log });
  controllerPort ??= await freePort();
  const logDir = join(dataDir, 'logs');
  const logsDir = join(dataDir, 'kraft');
  const configFile = join(dataDir, 'server.properties');
  mkdirSync(logDir, { recursive: true });
  writeProperties(configFile, {
    'process.roles': 'broker,controller',
    'node.id': '1',
    'controller.quorum.voters': `1@127.0.0.1:${controllerPort}`,
    listeners: `PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
    'advertised.listeners': `PLAINTEXT://127.0.0.1:${port}`,
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    'listener.security.protocol.map': 'CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    'log.dirs': logsDir,
    ...singleNodeSettings,
  });

  const classpath = join(libDir, '*');
  const jvm = [
    `-Xmx${heap}`,
    `-Xms${heap === '512m' ? '256m' : heap}`,
    '-XX:+UseG1GC',
    '-XX:MaxGCPauseMillis=20',
    '-Djava.awt.headless=true',
    `-Dkafka.logs.dir=${logDir}`,
    `-Dlog4j2.configurationFile=${join(here, 'log4j2.properties')}`,
    '-cp',
    classpath,
  ];
  if (!existsSync(join(logsDir, 'meta.properties'))) {
    execFileSync(
      'java',
      [
        ...jvm,
        'kafka.tools.StorageTool',
        'format',
        '--cluster-id',
        kraftClusterId(),
        '--config',
        configFile,
      ],
      {
        stdio: ['ignore', 'ignore', 'inherit'],
      },
    );
  }

  const brokers = `127.0.0.1:${port}`;
  const launch = async () => {
    const proc = startProcess('java', [...jvm, 'kafka.Kafka', configFile], {
      logFile: join(logDir, 'stdout.log'),
      name: 'kafka',
    });
    try {
      await waitFor(`Kafka on ${brokers}`, () => adminAnswers(brokers), {
        timeoutMs: readyTimeoutMs,
        intervalMs: 300,
        isAlive: proc.isAlive,
      });
    } catch (error) {
      await proc.kill();
      throw new Error(`${error.message} (see ${join(logDir, 'server.log')})`, { cause: error });
    }
    return proc;
  };

  let proc = await launch();
  return {
    brokers,
    port,
    dataDir,
    get pid() {
      return proc.pid;
    },
    isAlive: () => proc.isAlive(),
    /** Controlled shutdown (SIGTERM), SIGKILL after 30 s. */
    stop: () => proc.stop(30_000),
    /** Crash: SIGKILL, no controlled shutdown. */
    kill: () => proc.kill(),
    /** Starts the broker again on the same port and data (after `stop` or `kill`). */
    async restart() {
      if (proc.isAlive()) await proc.stop(30_000);
      proc = await launch();
    },
  };
}

/** True once the broker answers a metadata request and has a controller. */
export async function adminAnswers(brokers) {
  const kafka = new Kafka({
    clientId: 'kafka-launcher-probe',
    brokers: [brokers],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1_000,
    retry: { retries: 0 },
  });
  const admin = kafka.admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    return cluster.brokers.length > 0 && cluster.controller !== null;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

async function main() {
  const kafka = await startKafka({
    port: Number(process.env.KAFKA_PORT ?? 9092),
    controllerPort: process.env.KAFKA_CONTROLLER_PORT
      ? Number(process.env.KAFKA_CONTROLLER_PORT)
      : undefined,
    dataDir: process.env.KAFKA_DATA_DIR ? resolve(process.env.KAFKA_DATA_DIR) : undefined,
  });
  console.log(`Kafka ready on ${kafka.brokers} (data in ${kafka.dataDir}); Ctrl-C stops it`);
  const shutdown = async () => {
    await kafka.stop();
    process.exit(0);
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error) => {
    console.error(`[kafka] ${error.message}`);
    process.exit(1);
  });
}
