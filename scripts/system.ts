// The apps of the system and the one way to start it: `startSystem` runs Kafka, Redis and the
// apps, each app a process of its own from dist/, wired as `npm run stack` wires them. The
// stack, the end-to-end tests, the integration tests and the benchmarks all start it here,
// so what is tested and measured is what users run.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  startKafka,
  startKafkaCluster,
  type KafkaClusterHandle,
  type KafkaHandle,
  type KafkaSecurity,
} from './kafka/kafka.ts';
import {
  allStarted,
  freePort,
  killAllNow,
  startProcess,
  waitFor,
  type ProcessHandle,
} from './lib/process.ts';
import {
  startRedis,
  startRedisCluster,
  type AppendFsync,
  type RedisClusterHandle,
  type RedisHandle,
} from './redis/redis.ts';

export const root = resolve(import.meta.dirname, '..');

export type AppName =
  | 'dev-idp'
  | 'session-service'
  | 'revocation-publisher'
  | 'content-api'
  | 'account-api'
  | 'ssf-transmitter'
  | 'gateway';

/** Every app, in start order, its default first port (`<NAME>_PORT` for `npm run stack`),
 * whether it runs several instances, and its stage: the publisher provisions the topic the
 * API services and the SSF transmitter read (stage 1), and the gateway proxies to the API
 * services (stage 2). The dev OpenID provider is the local stand-in for the users' provider:
 * started only where asked for (`npm run stack` does), never in production. */
export const APPS = [
  { name: 'dev-idp', port: 4000, scalable: false, stage: 0 },
  { name: 'session-service', port: 3000, scalable: false, stage: 0 },
  { name: 'revocation-publisher', port: 3001, scalable: false, stage: 0 },
  { name: 'content-api', port: 3100, scalable: true, stage: 1 },
  { name: 'account-api', port: 3200, scalable: true, stage: 1 },
  { name: 'ssf-transmitter', port: 3500, scalable: false, stage: 1 },
  { name: 'gateway', port: 8080, scalable: true, stage: 2 },
] as const satisfies readonly { name: AppName; port: number; scalable: boolean; stage: number }[];

/** The apps the gateway proxies to, as `/api/<service>/…`: the API services, and the session
 * service for the web console's device and admin calls. */
const UPSTREAMS = {
  content: 'content-api',
  account: 'account-api',
  session: 'session-service',
} as const;

/** The gateway's client at the session service's `/oauth/introspect` (phantom tokens), and
 * at the OpenID provider (its ID tokens and logout tokens are addressed to it). */
export const GATEWAY_CLIENT_ID = 'gateway';

/** The SSF transmitter's one management client in a system started here. */
export const SSF_CLIENT_ID = 'ssf-demo';

/** What the gateway's sign-in button says for the dev provider. */
export const DEV_IDP_NAME = 'Dev IdP';

/** The dev provider's trust entry at the session service (OIDC_ISSUERS). oidc-provider serves
 * its JWKS at /jwks; its `roles` claim carries "admin" for the demo admin. */
export function devIdpIssuer(devIdpUrl: string) {
  return {
    issuer: devIdpUrl,
    jwks_uri: `${devIdpUrl}/jwks`,
    audience: GATEWAY_CLIENT_ID,
    roles_claim: 'roles',
    admin_role: 'admin',
    require_nonce: true,
  };
}

/** The variable `npm run stack` takes an app's first port from: SESSION_SERVICE_PORT… */
export const portVar = (name: AppName) => `${name.toUpperCase().replaceAll('-', '_')}_PORT`;

/**
 * How the apps find each other: the environment one instance of `name` gets, given where
 * Kafka, Redis, the session service and the API instances are. The session service's ISSUER
 * is its own URL; the API services and the gateway verify tokens of that issuer with the keys
 * at its JWKS. The gateway signs in at the session service, exchanges opaque tokens there as
 * a client of its own, and proxies `/api/<service>/…` to that service's instances.
 */
export function wiringEnv(
  name: AppName,
  instanceId: string,
  wiring: Wiring,
): Record<string, string> {
  const { brokers, sessionServiceUrl, gatewayClientSecret, devIdpUrl } = wiring;
  // A Cluster's apps get its nodes (REDIS_URL is then ignored), a single Redis its URL.
  const redis: Record<string, string> = wiring.redisClusterNodes
    ? { REDIS_CLUSTER_NODES: wiring.redisClusterNodes }
    : { REDIS_URL: wiring.redisUrl };
  const verifier = {
    KAFKA_BROKERS: brokers,
    JWKS_URL: `${sessionServiceUrl}/.well-known/jwks.json`,
    TOKEN_ISSUER: sessionServiceUrl,
  };
  switch (name) {
    case 'dev-idp':
      // The gateway is its one client: code flow at every gateway origin, back-channel logout
      // to the session service.
      return {
        INSTANCE_ID: instanceId,
        ...(devIdpUrl && { DEV_IDP_ISSUER: devIdpUrl }),
        DEV_IDP_CLIENTS: JSON.stringify([
          {
            client_id: GATEWAY_CLIENT_ID,
            client_secret: wiring.idpClientSecret,
            redirect_uris: wiring.gatewayOrigins.map((origin) => `${origin}/bff/callback`),
            post_logout_redirect_uris: wiring.gatewayOrigins.map((origin) => `${origin}/`),
            backchannel_logout_uri: `${sessionServiceUrl}/oidc/backchannel-logout`,
          },
        ]),
      };
    case 'session-service':
      // The demo users: a system started from this repository is a developer's or a test's.
      return {
        INSTANCE_ID: instanceId,
        ...redis,
        ISSUER: sessionServiceUrl,
        SEED_DEMO_USERS: 'true',
        OAUTH_CLIENTS: JSON.stringify([
          { client_id: GATEWAY_CLIENT_ID, client_secret: gatewayClientSecret },
        ]),
        ...(devIdpUrl && { OIDC_ISSUERS: JSON.stringify([devIdpIssuer(devIdpUrl)]) }),
      };
    case 'revocation-publisher':
      return { INSTANCE_ID: instanceId, ...redis, KAFKA_BROKERS: brokers };
    case 'content-api':
    case 'account-api':
      return { INSTANCE_ID: instanceId, ...verifier };
    case 'ssf-transmitter':
      return {
        INSTANCE_ID: instanceId,
        ...redis,
        KAFKA_BROKERS: brokers,
        ...(wiring.ssfUrl && { SSF_ISSUER: wiring.ssfUrl }),
        SSF_CLIENTS: JSON.stringify([{ client_id: SSF_CLIENT_ID, token: wiring.ssfToken }]),
      };
    case 'gateway':
      return {
        INSTANCE_ID: instanceId,
        ...redis,
        ...verifier,
        GATEWAY_SESSION_SERVICE_URL: sessionServiceUrl,
        GATEWAY_UPSTREAMS: JSON.stringify(wiring.upstreams),
        GATEWAY_ALLOWED_ORIGINS: wiring.gatewayOrigins.join(','),
        GATEWAY_CLIENT_ID,
        GATEWAY_CLIENT_SECRET: gatewayClientSecret,
        ...(devIdpUrl && {
          GATEWAY_OIDC_ISSUER: devIdpUrl,
          GATEWAY_OIDC_CLIENT_ID: GATEWAY_CLIENT_ID,
          GATEWAY_OIDC_CLIENT_SECRET: wiring.idpClientSecret,
          GATEWAY_OIDC_PROVIDER_NAME: DEV_IDP_NAME,
        }),
      };
  }
}

export interface Wiring {
  brokers: string;
  redisUrl: string;
  /** `host:port,…` of a Redis Cluster's nodes: the apps use the Cluster, not `redisUrl`. */
  redisClusterNodes?: string | undefined;
  sessionServiceUrl: string;
  /** `<service>` → its instances' URLs, for the gateway's `/api/<service>/…`. */
  upstreams: Record<string, string[]>;
  /** The origins a browser sees the gateway instances at. */
  gatewayOrigins: string[];
  /** The gateway's client secret at the session service, made up for each system. */
  gatewayClientSecret: string;
  /** The dev OpenID provider's URL (its issuer), when the system has one: the session service
   * trusts it and the gateway signs users in through it. */
  devIdpUrl?: string | undefined;
  /** The gateway's client secret at the dev OpenID provider, made up for each system. */
  idpClientSecret: string;
  /** The SSF transmitter's URL (its issuer), when the system has one. */
  ssfUrl?: string | undefined;
  /** The bearer token of the SSF transmitter's management client, made up for each system. */
  ssfToken: string;
}

export interface AppHandle extends ProcessHandle {
  url: string;
  port: number;
  label: string;
}

export interface StartAppOptions {
  /** An app of APPS, or any entry point of the build given as `entry`. */
  name: string;
  /** A built file to run instead of the app's main.js (relative to the repository). */
  entry?: string;
  label?: string;
  port: number;
  env?: Record<string, string>;
  /** JSON log lines to this file; to this process's output prefixed with the label otherwise. */
  logFile?: string | undefined;
  /** A command the app runs under, e.g. `['unshare', '--pid', '--fork']`. */
  wrapper?: string[];
}

/** The last `count` lines of a log file, or '' when it cannot be read. */
function lastLines(file: string, count: number): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-count).join('\n');
  } catch {
    return '';
  }
}

/** Starts one built app as its own OS process on `port`; resolves once /health/ready is 200. */
export async function startApp({
  name,
  entry,
  label = name,
  port,
  env = {},
  logFile,
  wrapper = [],
}: StartAppOptions): Promise<AppHandle> {
  const file = join(root, entry ?? join('dist', 'apps', name, 'src', 'main.js'));
  // KafkaJS 2.2.4 arms negative timers, which Node 24 reports on every client.
  const flags = ['--enable-source-maps', '--disable-warning=TimeoutNegativeWarning'];
  const command = [...wrapper, process.execPath, ...flags, file];
  const proc = startProcess(command[0] ?? process.execPath, command.slice(1), {
    name: label,
    logFile,
    prefix: logFile ? undefined : label,
    env: {
      ...process.env,
      NODE_ENV: process.env.NODE_ENV ?? 'development',
      ...env,
      HTTP_HOST: '127.0.0.1',
      HTTP_PORT: String(port),
    },
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitFor(
      `${label} at ${url}/health/ready`,
      async () => (await fetch(`${url}/health/ready`)).ok,
      { timeoutMs: 60_000, intervalMs: 250, isAlive: proc.isAlive },
    );
  } catch (error) {
    await proc.stop(5_000);
    // The app's own words on why it stopped, rather than only "exited while starting".
    const tail = logFile ? lastLines(logFile, 8) : '';
    if (error instanceof Error && tail) error.message += `\nlast lines of ${logFile}:\n${tail}`;
    throw error;
  }
  return { ...proc, url, port, label };
}

export interface SystemOptions {
  /** Where Kafka's and Redis's data and the apps' logs go. */
  dataDir: string;
  /** The apps to start, in APPS order (default: all). More can be started later (`startApp`). */
  apps?: readonly AppName[];
  /** Instances of each scalable app (API services, gateway), or of every one; default 1. */
  instances?: number | Partial<Record<AppName, number>>;
  /** First port of an app (its instances take the next ones); a free port when absent. */
  ports?: Partial<Record<AppName, number>>;
  /**
   * `single` (default): one Kafka broker and one Redis. `cluster`: three Kafka nodes
   * (replication factor 3, min ISR 2) and a Redis Cluster of three primaries and three
   * replicas (`startKafkaCluster`, `startRedisCluster`); the apps get all brokers and
   * REDIS_CLUSTER_NODES. Given `kafka.brokers` / `redis.url` / `redis.clusterNodes` are used
   * whatever the topology.
   */
  topology?: 'single' | 'cluster';
  /** A running broker (or cluster) to use, or how to start the system's own (a free port by default). */
  kafka?: { brokers: string } | { port?: number; security?: KafkaSecurity };
  /**
   * A running Redis (`url`) or Redis Cluster (`clusterNodes`: `host:port,…`) to use, or how to
   * start the system's own (`appendfsync` default `always`; `port` for a single Redis only).
   */
  redis?: { url: string } | { clusterNodes: string } | { port?: number; appendfsync?: AppendFsync };
  /** Extra environment of one instance, on top of the wiring; called as it starts. */
  env?: (app: AppName, label: string, system: RunningSystem) => Record<string, string>;
  /** Apps' logs: files in `<dataDir>/logs` (default), or this process's output. */
  logs?: 'files' | 'stdout';
  /** Runs once Kafka and Redis are up, before any app starts (e.g. to create ACLs). */
  beforeApps?: (system: RunningSystem) => Promise<void>;
  log?: (message: string) => void;
}

// Whatever a process that started systems dies of, their processes do not outlive it.
const everything = new Set<{ pid: number | undefined; isAlive(): boolean }>();
let exitHook = false;
function trackForExit(handle: { pid: number | undefined; isAlive(): boolean }): void {
  everything.add(handle);
  if (exitHook) return;
  exitHook = true;
  process.once('exit', () => {
    killAllNow(everything);
  });
}

/** Kafka, Redis and the apps, started by `startSystem`. */
export class RunningSystem {
  /** The system's own single broker (topology `single`). */
  kafka: KafkaHandle | undefined;
  /** The system's own single Redis (topology `single`). */
  redis: RedisHandle | undefined;
  /** The system's own Kafka cluster (topology `cluster`): `nodes` to stop or kill one broker. */
  kafkaCluster: KafkaClusterHandle | undefined;
  /** The system's own Redis Cluster (topology `cluster`): `members` to stop or kill one node. */
  redisCluster: RedisClusterHandle | undefined;
  brokers = '';
  /** The single Redis's URL; on a Redis Cluster, its first node's (a plain client there only
   * reaches that node's slots: use `redisClusterNodes` with an ioredis Cluster). */
  redisUrl = '';
  /** `host:port,…` of every node of the Redis Cluster; '' on a single Redis. */
  redisClusterNodes = '';
  sessionServiceUrl = '';
  upstreams: Record<string, string[]> = {};
  gatewayOrigins: string[] = [];
  devIdpUrl: string | undefined;
  ssfUrl: string | undefined;
  readonly gatewayClientSecret = randomBytes(24).toString('base64url');
  readonly idpClientSecret = randomBytes(24).toString('base64url');
  readonly ssfToken = randomBytes(24).toString('base64url');
  /** The app instances running now, in start order. */
  readonly apps: AppHandle[] = [];
  private readonly deliberatelyStopped = new Set<AppHandle>();
  private readonly crashes: string[] = [];
  private readonly crashListeners: ((message: string) => void)[] = [];

  readonly options: SystemOptions;

  constructor(options: SystemOptions) {
    this.options = options;
  }

  get logDir(): string {
    return join(this.options.dataDir, 'logs');
  }

  /** Every running instance of `name`. */
  instances(name: AppName): AppHandle[] {
    return this.apps.filter((app) => this.appOf.get(app) === name);
  }

  /** The (first) running instance of `name`. */
  app(name: AppName): AppHandle {
    const [first] = this.instances(name);
    if (!first) throw new Error(`${name} is not running`);
    return first;
  }

  /**
   * Starts one instance of `name` with the system's wiring; resolves once it is ready.
   * `label` names it (INSTANCE_ID, log file); `env` comes on top of everything else; `entry`
   * runs another built file with `name`'s wiring (a benchmark's variant of an API).
   */
  async startApp(
    name: AppName,
    {
      label = name,
      port,
      env = {},
      entry,
    }: { label?: string; port?: number; env?: Record<string, string>; entry?: string } = {},
  ): Promise<AppHandle> {
    const at = port ?? (await freePort());
    // Started later than the system (not in its `apps`): the app is its own issuer's URL.
    if (name === 'dev-idp') this.devIdpUrl ??= `http://127.0.0.1:${at}`;
    if (name === 'ssf-transmitter') this.ssfUrl ??= `http://127.0.0.1:${at}`;
    const app = await startApp({
      name,
      entry,
      label,
      port: at,
      logFile: this.options.logs === 'stdout' ? undefined : join(this.logDir, `${label}.log`),
      env: {
        ...wiringEnv(name, label, this),
        ...this.options.env?.(name, label, this),
        ...env,
      },
    });
    this.appOf.set(app, name);
    this.apps.push(app);
    trackForExit(app);
    void app.exit.then(({ code, signal }) => {
      const index = this.apps.indexOf(app);
      if (index !== -1) this.apps.splice(index, 1);
      if (this.deliberatelyStopped.has(app)) return;
      const message = `${label} exited (code ${code}, signal ${signal})`;
      this.crashes.push(message);
      for (const listener of this.crashListeners) listener(message);
    });
    return app;
  }

  /** Stops an app (SIGTERM, SIGKILL after 10 s), or kills it (`crash`: SIGKILL at once). */
  async stopApp(app: AppHandle, { crash = false }: { crash?: boolean } = {}): Promise<void> {
    this.deliberatelyStopped.add(app);
    await (crash ? app.kill() : app.stop(10_000));
  }

  /** Starts a stopped app again with the same label (INSTANCE_ID) and port. */
  restartApp(app: AppHandle): Promise<AppHandle> {
    const name = this.appOf.get(app);
    if (!name) throw new Error(`${app.label} is not an app of this system`);
    return this.startApp(name, { label: app.label, port: app.port });
  }

  /** Apps that exited while nobody stopped them, naming the logs to read; undefined if none. */
  crashed(): string | undefined {
    return this.crashes.length > 0
      ? `${this.crashes.join('; ')} (logs in ${this.logDir})`
      : undefined;
  }

  /** Called when an app exits while nobody stopped it. */
  onCrash(listener: (message: string) => void): void {
    this.crashListeners.push(listener);
  }

  /** Stops every app, then Kafka and Redis; whatever fails, nothing is left running. */
  async stop(): Promise<void> {
    const apps = [...this.apps];
    for (const app of apps) this.deliberatelyStopped.add(app);
    await Promise.allSettled(apps.map((app) => app.stop(10_000)));
    await Promise.allSettled(
      [this.kafka, this.redis, this.kafkaCluster, this.redisCluster]
        .filter((s) => s !== undefined)
        .map((s) => s.stop()),
    );
  }

  private readonly appOf = new Map<AppHandle, AppName>();
}

/** Starts the system's Kafka and Redis, single nodes or clusters (unless given running ones). */
async function startServers(system: RunningSystem, log: (message: string) => void): Promise<void> {
  const { dataDir, topology = 'single' } = system.options;
  const kafkaOptions = system.options.kafka ?? {};
  const redisOptions = system.options.redis ?? {};
  const cluster = topology === 'cluster';
  const ownKafka = () =>
    cluster
      ? startKafkaCluster({ dataDir: join(dataDir, 'kafka'), log }).then((handle) => {
          system.kafkaCluster = handle;
          return handle.brokers;
        })
      : (async () => {
          const port = 'port' in kafkaOptions ? kafkaOptions.port : undefined;
          const security = 'security' in kafkaOptions ? kafkaOptions.security : undefined;
          system.kafka = await startKafka({
            port: port ?? (await freePort()),
            dataDir: join(dataDir, 'kafka'),
            security,
            log,
          });
          return system.kafka.brokers;
        })();
  const appendfsync = 'appendfsync' in redisOptions ? redisOptions.appendfsync : undefined;
  const ownRedis = () =>
    cluster
      ? startRedisCluster({ dataDir: join(dataDir, 'redis'), appendfsync, log }).then((handle) => {
          system.redisCluster = handle;
          system.redisClusterNodes = handle.nodes;
          system.redisUrl = handle.members[0]?.url ?? '';
        })
      : startRedis({
          port: 'port' in redisOptions ? redisOptions.port : undefined,
          appendfsync,
          dataDir: join(dataDir, 'redis'),
          log,
        }).then((handle) => {
          system.redis = handle;
          system.redisUrl = handle.url;
        });
  if ('url' in redisOptions) system.redisUrl = redisOptions.url;
  if ('clusterNodes' in redisOptions) {
    system.redisClusterNodes = redisOptions.clusterNodes;
    system.redisUrl = `redis://${redisOptions.clusterNodes.split(',')[0]?.trim() ?? ''}`;
  }
  const [brokers] = await allStarted([
    'brokers' in kafkaOptions ? Promise.resolve(kafkaOptions.brokers) : ownKafka(),
    'url' in redisOptions || 'clusterNodes' in redisOptions ? undefined : ownRedis(),
  ]).finally(() => {
    const nodes = [...(system.kafkaCluster?.nodes ?? []), ...(system.redisCluster?.members ?? [])];
    for (const server of [system.kafka, system.redis, ...nodes]) if (server) trackForExit(server);
  });
  system.brokers = brokers;
}

/**
 * Starts the system: Kafka and Redis (or takes the given ones), then the dev OpenID provider,
 * the session service and the publisher, then the API services and the SSF transmitter, then
 * the gateway. Rejects, with everything it started stopped, when
 * any piece does not come up.
 */
export async function startSystem(options: SystemOptions): Promise<RunningSystem> {
  const system = new RunningSystem(options);
  const {
    dataDir,
    instances = 1,
    ports = {},
    log = (m: string) => process.stderr.write(`${m}\n`),
  } = options;
  mkdirSync(dataDir, { recursive: true });
  try {
    await startServers(system, log);
    await options.beforeApps?.(system);

    // Every instance's port first: the apps are told each other's URLs.
    const wanted = APPS.filter((app) =>
      (options.apps ?? APPS.map((a) => a.name)).includes(app.name),
    );
    const countOf = (app: (typeof APPS)[number]) =>
      !app.scalable ? 1 : typeof instances === 'number' ? instances : (instances[app.name] ?? 1);
    const launches = await Promise.all(
      wanted.map(async (app) => {
        const count = countOf(app);
        const first = ports[app.name];
        return Promise.all(
          Array.from({ length: count }, async (_, i) => ({
            app,
            label: count > 1 ? `${app.name}-${i + 1}` : app.name,
            port: first ? first + i : await freePort(),
          })),
        );
      }),
    ).then((lists) => lists.flat());
    const urlsOf = (name: AppName, host = '127.0.0.1') =>
      launches.filter((l) => l.app.name === name).map((l) => `http://${host}:${l.port}`);
    system.sessionServiceUrl =
      urlsOf('session-service')[0] ?? `http://127.0.0.1:${ports['session-service'] ?? 3000}`;
    system.upstreams = Object.fromEntries(
      Object.entries(UPSTREAMS)
        .map(([service, app]) => [service, urlsOf(app)] as const)
        .filter(([, urls]) => urls.length > 0),
    );
    system.gatewayOrigins = [...urlsOf('gateway', 'localhost'), ...urlsOf('gateway')];
    system.devIdpUrl = urlsOf('dev-idp')[0];
    system.ssfUrl = urlsOf('ssf-transmitter')[0];
    for (const stage of [0, 1, 2])
      await allStarted(
        launches
          .filter((l) => l.app.stage === stage)
          .map((l) => system.startApp(l.app.name, { label: l.label, port: l.port })),
      );
    return system;
  } catch (error) {
    await system.stop();
    throw error;
  }
}
