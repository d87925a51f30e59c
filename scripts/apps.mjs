// The apps of the system and how to run one from the build: shared by the stack launcher
// and the end-to-end tests, so tests start apps exactly as `npm run stack` does.
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startProcess, waitFor } from './lib/process.mjs';

export const root = resolve(fileURLToPath(import.meta.url), '../..');

/** Every app and its default first port; `scalable` apps run API_INSTANCES times. */
export const APPS = [
  {
    name: 'session-service',
    portVar: 'SESSION_SERVICE_PORT',
    port: 3000,
    scalable: false,
  },
  {
    name: 'revocation-publisher',
    portVar: 'REVOCATION_PUBLISHER_PORT',
    port: 3001,
    scalable: false,
  },
  {
    name: 'content-api',
    portVar: 'CONTENT_API_PORT',
    port: 3100,
    scalable: true,
  },
  {
    name: 'account-api',
    portVar: 'ACCOUNT_API_PORT',
    port: 3200,
    scalable: true,
  },
];

/**
 * How the apps find each other: the environment `npm run stack` gives one instance of `name`,
 * given where Kafka, Redis and the session service are. The end-to-end tests wire their apps
 * with it too. The session service's ISSUER is its own URL; the API services verify tokens
 * of that issuer with the keys at its JWKS.
 */
export function wiringEnv({
  name,
  instanceId,
  brokers,
  redisUrl,
  sessionServiceUrl,
  seedDemoUsers = 'true',
}) {
  switch (name) {
    case 'session-service':
      return {
        INSTANCE_ID: instanceId,
        REDIS_URL: redisUrl,
        ISSUER: sessionServiceUrl,
        SEED_DEMO_USERS: seedDemoUsers,
      };
    case 'revocation-publisher':
      return { INSTANCE_ID: instanceId, REDIS_URL: redisUrl, KAFKA_BROKERS: brokers };
    default:
      // The API services: Kafka and the issuer's keys, never Redis.
      return {
        INSTANCE_ID: instanceId,
        KAFKA_BROKERS: brokers,
        JWKS_URL: `${sessionServiceUrl}/.well-known/jwks.json`,
        TOKEN_ISSUER: sessionServiceUrl,
      };
  }
}

/** Node flags for every app: KafkaJS 2.2.4 arms negative timers, which Node 24 reports on every client. */
export const NODE_FLAGS = ['--enable-source-maps', '--disable-warning=TimeoutNegativeWarning'];

export function entryFile(name) {
  return join(root, 'dist', 'apps', name, 'src', 'main.js');
}

/**
 * Starts one built app as its own OS process on `port`; resolves once /health/ready answers 200.
 * Its JSON log lines go to `logFile`, or to this process's output prefixed with `label`.
 * `wrapper`: a command the app runs under (e.g. `unshare --pid --fork` for a pid of its own).
 */
export async function startApp({
  name,
  label = name,
  port,
  host = '127.0.0.1',
  env = {},
  logFile,
  readyTimeoutMs = 60_000,
  wrapper = [],
}) {
  const command = [...wrapper, process.execPath, ...NODE_FLAGS, entryFile(name)];
  const proc = startProcess(command[0], command.slice(1), {
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
      {
        timeoutMs: readyTimeoutMs,
        intervalMs: 250,
        isAlive: proc.isAlive,
      },
    );
  } catch (error) {
    await proc.stop(5_000);
    throw error;
  }
  return { ...proc, url, port, label };
}
