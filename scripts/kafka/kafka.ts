// Starts one Apache Kafka 4 node (KRaft, combined broker + controller) on loopback,
// from the jars Maven resolves into scripts/kafka/target/lib (cached in ~/.m2).
//
// As a module: `startKafka(options)` resolves once the admin API answers.
// As a command: `npm run kafka` runs a broker in the foreground
// until SIGINT/SIGTERM (KAFKA_PORT, KAFKA_DATA_DIR).
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Kafka, logLevel, type KafkaConfig } from 'kafkajs';
import {
  envInt,
  freePort,
  restartable,
  runInForeground,
  startProcess,
  waitFor,
  type ProcessHandle,
  type ServiceHandle,
} from '../lib/process.ts';

const here = import.meta.dirname;
const root = resolve(here, '../..');
const libDir = join(here, 'target', 'lib');

type Log = (message: string) => void;

export interface KafkaSecurity {
  /** SCRAM-SHA-512 users and their passwords; `admin` may do anything. */
  users: Record<string, string>;
  /** The client listener over TLS (a CA and certificate made with openssl). */
  tls?: boolean;
}

/** KafkaJS `ssl` and `sasl` for one user of a secured broker (empty on a plain broker). */
export type KafkaClientSecurity = Pick<KafkaConfig, 'ssl' | 'sasl'>;

export interface KafkaHandle extends ServiceHandle {
  brokers: string;
  /** The CA of a TLS broker, for KAFKA_SSL_CA_FILE. */
  caFile?: string;
  clientSecurity(user: string): KafkaClientSecurity;
}

export interface KafkaOptions {
  port?: number;
  dataDir?: string;
  log?: Log;
  security?: KafkaSecurity | undefined;
}

/** Broker settings for a single local node; docker-compose.yml mirrors them. */
export const singleNodeSettings: Record<string, string> = {
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
export function ensureKafkaJars({ log = console.error }: { log?: Log } = {}): string {
  const pom = readFileSync(join(here, 'pom.xml'));
  const digest = createHash('sha256').update(pom).digest('hex');
  const stamp = join(libDir, '.pom-sha256');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === digest) return libDir;
  log('[kafka] copying Apache Kafka jars with Maven (downloaded once, then taken from ~/.m2)');
  rmSync(libDir, { recursive: true, force: true });
  try {
    const copy = '-q -B dependency:copy-dependencies -DincludeScope=runtime'.split(' ');
    execFileSync('mvn', [...copy, `-DoutputDirectory=${libDir}`, '-f', join(here, 'pom.xml')], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
  } catch (error) {
    throw new Error(
      `Maven could not resolve the Kafka jars (is mvn on PATH, Java 17+ installed?): ${String(error)}`,
      { cause: error },
    );
  }
  writeFileSync(stamp, digest);
  return libDir;
}

/** A KRaft cluster id: a base64url-encoded UUID (22 characters), never starting with '-'
 * (the storage tool's argument parser would take it for an option). */
export function kraftClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (/^[A-Za-z0-9]/.test(id)) return id;
  }
}

function writeProperties(file: string, props: Record<string, string>): void {
  writeFileSync(
    file,
    Object.entries(props)
      .map(([k, v]) => `${k}=${v}`)
      .join('\n') + '\n',
  );
}

/**
 * A CA and a certificate for 127.0.0.1 signed by it, made with openssl once per data folder:
 * `keystore` (key and chain, for the broker) and `ca` (for clients).
 */
function tlsMaterial(dir: string): { ca: string; keystore: string } {
  const files = { ca: join(dir, 'ca.crt'), keystore: join(dir, 'server-keystore.pem') };
  if (existsSync(files.keystore)) return files;
  mkdirSync(dir, { recursive: true });
  // Each command as one line of words (none holds a space).
  const openssl = (command: string) =>
    execFileSync('openssl', command.split(' '), { cwd: dir, stdio: 'ignore' });
  openssl(
    'req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 -keyout ca.key -out ca.crt ' +
      '-subj /CN=local-kafka-ca -addext basicConstraints=critical,CA:TRUE ' +
      '-addext keyUsage=critical,keyCertSign,cRLSign',
  );
  openssl(
    'req -newkey rsa:2048 -nodes -sha256 -keyout server.key -out server.csr -subj /CN=127.0.0.1',
  );
  writeFileSync(
    join(dir, 'server.ext'),
    'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n' +
      'extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n',
  );
  openssl(
    'x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days 825 ' +
      '-extfile server.ext -out server.crt',
  );
  writeFileSync(
    files.keystore,
    [
      readFileSync(join(dir, 'server.key')),
      readFileSync(join(dir, 'server.crt')),
      readFileSync(files.ca),
    ].join(''),
  );
  return files;
}

/**
 * Listener settings. Plain by default; with `security`, the client listener requires SASL
 * (SCRAM-SHA-512, over TLS when `security.tls`), the controller listener a password of its
 * own, and every operation an ACL (the StandardAuthorizer; `admin` is the super user).
 */
function listenerSettings({
  port,
  controllerPort,
  security,
  dataDir,
}: {
  port: number;
  controllerPort: number;
  security: KafkaSecurity | undefined;
  dataDir: string;
}): Record<string, string> {
  if (!security) {
    return {
      listeners: `PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
      'advertised.listeners': `PLAINTEXT://127.0.0.1:${port}`,
      'inter.broker.listener.name': 'PLAINTEXT',
      'listener.security.protocol.map': 'CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    };
  }
  const protocol = security.tls ? 'SASL_SSL' : 'SASL_PLAINTEXT';
  const listener = protocol.toLowerCase();
  const controllerSecret = persistentSecret(join(dataDir, 'controller.secret'));
  const tls = security.tls ? tlsMaterial(join(dataDir, 'tls')) : undefined;
  return {
    listeners: `${protocol}://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
    'advertised.listeners': `${protocol}://127.0.0.1:${port}`,
    'inter.broker.listener.name': protocol,
    'listener.security.protocol.map': `CONTROLLER:SASL_PLAINTEXT,${protocol}:${protocol}`,
    'sasl.enabled.mechanisms': 'SCRAM-SHA-512',
    'sasl.mechanism.inter.broker.protocol': 'SCRAM-SHA-512',
    [`listener.name.${listener}.scram-sha-512.sasl.jaas.config`]: `org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="${security.users.admin ?? ''}";`,
    'sasl.mechanism.controller.protocol': 'PLAIN',
    'listener.name.controller.sasl.enabled.mechanisms': 'PLAIN',
    'listener.name.controller.plain.sasl.jaas.config': `org.apache.kafka.common.security.plain.PlainLoginModule required username="controller" password="${controllerSecret}" user_controller="${controllerSecret}";`,
    'authorizer.class.name': 'org.apache.kafka.metadata.authorizer.StandardAuthorizer',
    'super.users': 'User:admin;User:controller',
    'allow.everyone.if.no.acl.found': 'false',
    ...(tls
      ? {
          'ssl.keystore.type': 'PEM',
          'ssl.keystore.location': tls.keystore,
          'ssl.truststore.type': 'PEM',
          'ssl.truststore.location': tls.ca,
          'ssl.client.auth': 'none',
        }
      : {}),
  };
}

/** A random secret kept in `file` (made on first use): the same across restarts of one broker. */
function persistentSecret(file: string): string {
  if (!existsSync(file))
    writeFileSync(file, randomBytes(18).toString('base64url'), { mode: 0o600 });
  return readFileSync(file, 'utf8').trim();
}

/** KafkaJS client settings for `user` of a secured broker (TLS with its CA, SASL/SCRAM). */
export function clientSecurity(
  security: KafkaSecurity | undefined,
  dataDir: string,
  user: string,
): KafkaClientSecurity {
  if (!security) return {};
  const password = security.users[user];
  if (password === undefined) throw new Error(`no Kafka user "${user}"`);
  return {
    ...(security.tls
      ? { ssl: { ca: [readFileSync(join(dataDir, 'tls', 'ca.crt'), 'utf8')] } }
      : {}),
    sasl: { mechanism: 'scram-sha-512', username: user, password },
  };
}

/**
 * Starts a broker. Reuses `dataDir` when it holds a formatted log (a restart keeps topics and
 * offsets), formats it otherwise. `security: { users: { admin, <name>: <password>… }, tls }`
 * makes clients authenticate (SCRAM-SHA-512) and every operation need an ACL; `admin` may do
 * anything. Passwords: letters, digits, `_` and `-` (the storage tool cannot take others).
 */
export async function startKafka({
  port = 9092,
  dataDir = join(root, '.data', 'kafka'),
  log = console.error,
  security,
}: KafkaOptions = {}): Promise<KafkaHandle> {
  ensureKafkaJars({ log });
  if (security && !security.users.admin) throw new Error('a secured broker needs an "admin" user');
  for (const password of Object.values(security?.users ?? {}))
    if (!/^[\w-]+$/.test(password))
      throw new Error('Kafka passwords: letters, digits, _ and - only');
  const controllerPort = await freePort();
  const node = { nodeId: 1, port, controllerPort, dataDir };
  const [server] = await startNodes([node], { settings: singleNodeSettings, security, heap: 512 });
  if (!server) throw new Error('no broker started');
  // Stop: controlled shutdown, SIGKILL after 30 s; kill: a crash; restart: same port and data.
  return Object.assign(server, {
    ...(security?.tls ? { caFile: join(dataDir, 'tls', 'ca.crt') } : {}),
    /** KafkaJS `ssl` and `sasl` for one of `security.users` (empty on a plain broker). */
    clientSecurity: (user: string) => clientSecurity(security, dataDir, user),
  });
}

/** Broker settings for the local cluster: every topic on 3 replicas, 2 of them in sync for
 * a write to count (with producers' acks=all), as DESIGN.md asks of a production cluster. */
export const clusterSettings: Record<string, string> = {
  ...singleNodeSettings,
  'default.replication.factor': '3',
  'min.insync.replicas': '2',
  'offsets.topic.replication.factor': '3',
  'transaction.state.log.replication.factor': '3',
  'transaction.state.log.min.isr': '2',
  'share.coordinator.state.topic.replication.factor': '3',
  'share.coordinator.state.topic.min.isr': '2',
};

/** One broker of a cluster: its id, where it listens, and its own stop, kill and restart. */
export interface KafkaNode extends ServiceHandle {
  nodeId: number;
  brokers: string;
}

export interface KafkaClusterHandle extends KafkaHandle {
  nodes: KafkaNode[];
}

/**
 * Starts `nodes` brokers (default 3) as one KRaft cluster on loopback: each a combined broker
 * and controller (every node votes), from the same jars, with small heaps, in
 * `<dataDir>/node-<id>`. Resolves once every node answers and the cluster has all of them.
 * The handle's stop, kill and restart act on every node; `nodes` on one (fault tests).
 */
export async function startKafkaCluster({
  nodes: count = 3,
  dataDir = join(root, '.data', 'kafka-cluster'),
  log = console.error,
}: { nodes?: number; dataDir?: string; log?: Log } = {}): Promise<KafkaClusterHandle> {
  ensureKafkaJars({ log });
  const specs = await Promise.all(
    Array.from({ length: count }, async (_, i) => ({
      nodeId: i + 1,
      port: await freePort(),
      controllerPort: await freePort(),
      dataDir: join(dataDir, `node-${i + 1}`),
    })),
  );
  mkdirSync(dataDir, { recursive: true });
  // Every node of a cluster is formatted with the same id, kept for restarts.
  const idFile = join(dataDir, 'cluster.id');
  if (!existsSync(idFile)) writeFileSync(idFile, kraftClusterId());
  const clusterId = readFileSync(idFile, 'utf8').trim();
  const servers = await startNodes(specs, { settings: clusterSettings, heap: 384, clusterId });
  const nodes = servers.map((server, i) => Object.assign(server, { nodeId: i + 1 }));
  const brokers = nodes.map((node) => node.brokers).join(',');
  await waitFor(
    `all ${count} brokers in the cluster at ${brokers}`,
    async () => (await clusterSize(brokers)) === count,
    { timeoutMs: 60_000, intervalMs: 300 },
  );
  const each = (act: (node: KafkaNode) => Promise<unknown>) =>
    Promise.all(nodes.map(act)).then(() => undefined);
  return {
    brokers,
    nodes,
    port: nodes[0]?.port ?? 0,
    dataDir,
    get pid() {
      return nodes[0]?.pid;
    },
    isAlive: () => nodes.every((node) => node.isAlive()),
    stop: () => each((node) => node.stop()),
    kill: () => each((node) => node.kill()),
    restart: () => each((node) => node.restart()),
    clientSecurity: () => ({}),
  };
}

interface NodeSpec {
  nodeId: number;
  port: number;
  controllerPort: number;
  dataDir: string;
}

/**
 * Runs `command` to its end without blocking the event loop: its output ignored, its errors
 * to ours; fails naming `what` (never the arguments: they may hold passwords).
 */
function runToEnd(what: string, command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${what} exited with ${code ?? signal}`));
    });
  });
}

/**
 * Formats (when new) and starts each node of `specs` as one KRaft quorum (all of them
 * voters), all at once: a node of a cluster answers only once a quorum of its voters runs.
 */
async function startNodes(
  specs: NodeSpec[],
  {
    settings,
    security,
    heap,
    clusterId = kraftClusterId(),
  }: {
    settings: Record<string, string>;
    security?: KafkaSecurity | undefined;
    heap: number;
    clusterId?: string;
  },
): Promise<(ServiceHandle & { brokers: string })[]> {
  const voters = specs.map((n) => `${n.nodeId}@127.0.0.1:${n.controllerPort}`).join(',');
  return Promise.all(
    specs.map(async ({ nodeId, port, controllerPort, dataDir }) => {
      const logDir = join(dataDir, 'logs');
      const logsDir = join(dataDir, 'kraft');
      const configFile = join(dataDir, 'server.properties');
      mkdirSync(logDir, { recursive: true });
      writeProperties(configFile, {
        'process.roles': 'broker,controller',
        'node.id': String(nodeId),
        'controller.quorum.voters': voters,
        'controller.listener.names': 'CONTROLLER',
        ...listenerSettings({ port, controllerPort, security, dataDir }),
        'log.dirs': logsDir,
        ...settings,
      });
      const jvm = [
        `-Xmx${heap}m`,
        `-Xms${Math.min(256, heap)}m`,
        '-XX:+UseG1GC',
        '-XX:MaxGCPauseMillis=20',
        '-Djava.awt.headless=true',
        `-Dkafka.logs.dir=${logDir}`,
        `-Dlog4j2.configurationFile=${join(here, 'log4j2.properties')}`,
        '-cp',
        join(libDir, '*'),
      ];
      if (!existsSync(join(logsDir, 'meta.properties'))) {
        // Not execFileSync: a JVM takes seconds to start on a loaded machine, and blocking the
        // event loop that long (three nodes one after the other) timed out the probes of the
        // servers started alongside (the Redis Cluster's nodes, ready but not asked in 20 s).
        await runToEnd(
          `formatting Kafka node ${nodeId}`,
          'java',
          [
            ...jvm,
            'kafka.tools.StorageTool',
            'format',
            '--cluster-id',
            clusterId,
            '--config',
            configFile,
            // SCRAM credentials live in the metadata log: created when it is formatted.
            ...Object.entries(security?.users ?? {}).flatMap(([name, password]) => [
              '--add-scram',
              `SCRAM-SHA-512=[name=${name},password=${password}]`,
            ]),
          ],
          // Its output lists the credentials' salts and keys: not for the terminal.
        );
      }
      const brokers = `127.0.0.1:${port}`;
      const name = specs.length > 1 ? `kafka-${nodeId}` : 'kafka';
      const launch = async (): Promise<ProcessHandle> => {
        const proc = startProcess('java', [...jvm, 'kafka.Kafka', configFile], {
          logFile: join(logDir, 'stdout.log'),
          name,
        });
        try {
          const admin = clientSecurity(security, dataDir, 'admin');
          await waitFor(`Kafka on ${brokers}`, () => adminAnswers(brokers, admin), {
            timeoutMs: 90_000,
            intervalMs: 300,
            isAlive: proc.isAlive,
          });
        } catch (error) {
          await proc.kill();
          throw new Error(`${String(error)} (see ${join(logDir, 'server.log')})`, { cause: error });
        }
        return proc;
      };
      const server = await restartable(launch, { port, dataDir, graceMs: 30_000 });
      return Object.assign(server, { brokers });
    }),
  );
}

/** How many brokers the cluster at `brokers` lists (0 when it does not answer). */
async function clusterSize(brokers: string): Promise<number> {
  const kafka = new Kafka({
    clientId: 'kafka-launcher-probe',
    brokers: brokers.split(','),
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1_000,
    retry: { retries: 0 },
  });
  const admin = kafka.admin();
  try {
    await admin.connect();
    return (await admin.describeCluster()).brokers.length;
  } catch {
    return 0;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** True once the broker answers a metadata request and has a controller. */
export async function adminAnswers(
  brokers: string,
  security: KafkaClientSecurity = {},
): Promise<boolean> {
  const kafka = new Kafka({
    clientId: 'kafka-launcher-probe',
    brokers: [brokers],
    ...security,
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

if (process.argv[1] && resolve(process.argv[1]) === import.meta.filename) {
  runInForeground('kafka', async () => {
    const kafka = await startKafka({
      port: envInt('KAFKA_PORT', 9092),
      dataDir: process.env.KAFKA_DATA_DIR ? resolve(process.env.KAFKA_DATA_DIR) : undefined,
    });
    return Object.assign(kafka, { url: kafka.brokers });
  });
}
