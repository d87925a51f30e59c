// The apps of the system and the one way to start it: `startSystem` runs Kafka, Redis and the
// apps, each app a process of its own from dist/, wired as `npm run stack` wires them. The
// stack, the end-to-end tests, the integration tests and the benchmarks all start it here,
// so what is tested and measured is what users run.
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startKafka, type KafkaHandle, type KafkaSecurity } from './kafka/kafka.ts';
import {
  allStarted,
  freePort,
  killAllNow,
  startProcess,
  waitFor,
  type ProcessHandle,
} from './lib/process.ts';
import { startRedis, type AppendFsync, type RedisHandle } from './redis/redis.ts';

export const root = resolve(import.meta.dirname, '..');

export type AppName = 'session-service' | 'revocation-publisher' | 'content-api' | 'account-api';

/** Every app, in start order (the publisher provisions the topic the API services read), its
 * default first port (`<NAME>_PORT` for `npm run stack`), and whether it runs `instances`
 * times (the API services) or once. */
export const APPS = [
  { name: 'session-service', port: 3000, scalable: false },
  { name: 'revocation-publisher', port: 3001, scalable: false },
  { name: 'content-api', port: 3100, scalable: true },
  { name: 'account-api', port: 3200, scalable: true },
] as const satisfies readonly { name: AppName; port: number; scalable: boolean }[];

/** The variable `npm run stack` takes an app's first port from: SESSION_SERVICE_PORT… */
export const portVar = (name: AppName) => `${name.toUpperCase().replaceAll('-', '_')}_PORT`;

/**
 * How the apps find each other: the environment one instance of `name` gets, given where
 * Kafka, Redis and the session service are. The session service's ISSUER is its own URL; the
 * API services verify tokens of that issuer with the keys at its JWKS, and never see Redis.
 */
export function wiringEnv(
  name: AppName,
  instanceId: string,
  { brokers, redisUrl, sessionServiceUrl }: Wiring,
): Record<string, string> {
  switch (name) {
    case 'session-service':
      // The demo users: a system started from this repository is a developer's or a test's.
      return {
        INSTANCE_ID: instanceId,
        REDIS_URL: redisUrl,
        ISSUER: sessionServiceUrl,
        SEED_DEMO_USERS: 'true',
      };
    case 'revocation-publisher':
      return { INSTANCE_ID: instanceId, REDIS_URL: redisUrl, KAFKA_BROKERS: brokers };
    case 'content-api':
    case 'account-api':
      return {
        INSTANCE_ID: instanceId,
        KAFKA_BROKERS: brokers,
        JWKS_URL: `${sessionServiceUrl}/.well-known/jwks.json`,
        TOKEN_ISSUER: sessionServiceUrl,
      };
  }
}

export interface Wiring {
  brokers: string;
  redisUrl: string;
  sessionServiceUrl: string;
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
  host?: string;
  env?: Record<string, string>;
  /** JSON log lines to this file; to this process's output prefixed with the label otherwise. */
  logFile?: string | undefined;
  readyTimeoutMs?: number;
  /** A command the app runs under, e.g. `['unshare', '--pid', '--fork']`. */
  wrapper?: string[];
}

/** Starts one built app as its own OS process on `port`; resolves once /health/ready is 200. */
export async function startApp({
  name,
  entry,
  label = name,
  port,
  host = '127.0.0.1',
  env = {},
  logFile,
  readyTimeoutMs = 60_000,
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
      HTTP_HOST: host,
      HTTP_PORT: String(port),
    },
  });
  const url = `http://${host}:${port}`;
  try {
    await waitFor(
      `${label} at ${url}/health/ready`,
      async () => (await fetch(`${url}/health/ready`)).ok,
      { timeoutMs: readyTimeoutMs, intervalMs: 250, isAlive: proc.isAlive },
    );
  } catch (error) {
    await proc.stop(5_000);
    throw error;
  }
  return { ...proc, url, port, label };
}

export interface SystemOptions {
  /** Where Kafka's and Redis's data and the apps' logs go. */
  dataDir: string;
  /** The apps to start, in APPS order (default: all). More can be started later (`startApp`). */
  apps?: readonly AppName[];
  /** Instances of each scalable app (the API services); default 1. */
  instances?: number;
  /** First port of an app (its instances take the next ones); a free port when absent. */
  ports?: Partial<Record<AppName, number>>;
  /** A running broker to use, or how to start the system's own (a free port by default). */
  kafka?: { brokers: string } | { port?: number; security?: KafkaSecurity };
  /** A running Redis to use, or how to start the system's own (`appendfsync` default `always`). */
  redis?: { url: string } | { port?: number; appendfsync?: AppendFsync };
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
  kafka: KafkaHandle | undefined;
  redis: RedisHandle | undefined;
  brokers = '';
  redisUrl = '';
  sessionServiceUrl = '';
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
   * `label` names it (INSTANCE_ID, log file); `env` comes on top of everything else.
   */
  async startApp(
    name: AppName,
    {
      label = name,
      port,
      env = {},
    }: { label?: string; port?: number; env?: Record<string, string> } = {},
  ): Promise<AppHandle> {
    const app = await startApp({
      name,
      label,
      port: port ?? (await freePort()),
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
  restartApp(app: AppHandle, env?: Record<string, string>): Promise<AppHandle> {
    const name = this.appOf.get(app);
    if (!name) throw new Error(`${app.label} is not an app of this system`);
    return this.startApp(name, { label: app.label, port: app.port, ...(env ? { env } : {}) });
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
      [this.kafka, this.redis].filter((s) => s !== undefined).map((s) => s.stop()),
    );
  }

  private readonly appOf = new Map<AppHandle, AppName>();
}

/**
 * Starts the system: Kafka and Redis (or takes the given ones), then the session service and
 * the publisher, then the API services. Rejects, with everything it started stopped, when
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
    const kafkaOptions = options.kafka ?? {};
    const redisOptions = options.redis ?? {};
    const [kafka, redis] = await allStarted([
      'brokers' in kafkaOptions
        ? undefined
        : startKafka({
            port: kafkaOptions.port ?? (await freePort()),
            dataDir: join(dataDir, 'kafka'),
            security: kafkaOptions.security,
            log,
          }).then((handle) => (system.kafka = handle)),
      'url' in redisOptions
        ? undefined
        : startRedis({
            port: redisOptions.port,
            appendfsync: redisOptions.appendfsync,
            dataDir: join(dataDir, 'redis'),
            log,
          }).then((handle) => (system.redis = handle)),
    ]).finally(() => {
      for (const server of [system.kafka, system.redis]) if (server) trackForExit(server);
    });
    system.brokers = 'brokers' in kafkaOptions ? kafkaOptions.brokers : (kafka?.brokers ?? '');
    system.redisUrl = 'url' in redisOptions ? redisOptions.url : (redis?.url ?? '');
    await options.beforeApps?.(system);

    // Every instance's port first: the API services are told the session service's URL.
    const wanted = APPS.filter((app) =>
      (options.apps ?? APPS.map((a) => a.name)).includes(app.name),
    );
    const launches = await Promise.all(
      wanted.map(async (app) => {
        const count = app.scalable ? instances : 1;
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
    const sessionPort =
      launches.find((l) => l.app.name === 'session-service')?.port ??
      ports['session-service'] ??
      3000;
    system.sessionServiceUrl = `http://127.0.0.1:${sessionPort}`;
    const start = (scalable: boolean) =>
      allStarted(
        launches
          .filter((l) => l.app.scalable === scalable)
          .map((l) => system.startApp(l.app.name, { label: l.label, port: l.port })),
      );
    await start(false);
    await start(true);
    return system;
  } catch (error) {
    await system.stop();
    throw error;
  }
}
