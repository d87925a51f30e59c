// The system as `npm run stack` runs it, started for a benchmark on free loopback ports in the
// run's data folder: Kafka, Redis, a local OpenID Connect issuer (so sessions are cheap to
// open: no scrypt), the session service, the publisher and any number of API instances, each
// app a process of its own from dist/ with the stack's wiring (`wiringEnv`).
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { exportJWK, generateKeyPair } from 'jose';
import { NODE_FLAGS, startApp, wiringEnv } from '../../scripts/apps.mjs';
import { startKafka } from '../../scripts/kafka/kafka.mjs';
import { freePort, startProcess, waitFor } from '../../scripts/lib/process.mjs';
import { startRedis } from '../../scripts/redis/redis.mjs';
import { post } from './http.mjs';
import { log, root, Stage } from './run.mjs';

const require = createRequire(import.meta.url);

/** Session-service limits raised so that a benchmark's sign-ins are never throttled or evicted. */
const UNTHROTTLED = {
  RATE_LIMIT_PER_IP: '1000000',
  RATE_LIMIT_FAILS_PER_USERNAME: '1000000',
  // The schema caps it at 1,000; every benchmark session has a user of its own anyway.
  DEFAULT_MAX_DEVICES: '1000',
};

/** A P-256 private JWK as SIGNING_KEYS takes it: ES256, which jsonwebtoken verifies too. */
export async function es256SigningKeys() {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  return JSON.stringify([{ ...jwk, kid: 'bench-es256', alg: 'ES256', use: 'sig' }]);
}

/**
 * Starts Kafka, Redis, the OIDC issuer, the session service and the publisher; every piece is
 * tracked by `run`, so it is stopped whatever happens next.
 */
export async function startCore(run, { topic, sessionEnv = {}, publisherEnv = {} }) {
  const dataDir = run.dataDir;
  const bootStart = Date.now();
  // Both at once, and both settled before going on, so a failure of one still stops the other.
  const boots = await Promise.allSettled([
    freePort().then((port) =>
      startKafka({ port, dataDir: join(dataDir, 'kafka'), log }).then((kafka) =>
        run.track(Stage.infrastructure, 'kafka', kafka),
      ),
    ),
    startRedis({ dataDir: join(dataDir, 'redis'), appendfsync: 'everysec', log }).then((redis) =>
      run.track(Stage.infrastructure, 'redis', redis),
    ),
  ]);
  const failed = boots.find((boot) => boot.status === 'rejected');
  if (failed) throw failed.reason;
  const [kafka, redis] = boots.map((boot) => boot.value);
  log(`Kafka ${kafka.brokers} and Redis ${redis.url} up in ${Date.now() - bootStart} ms`);

  const { startOidcIssuer } = require(join(root, 'dist', 'libs', 'testing', 'src', 'index.js'));
  const issuer = run.track(Stage.infrastructure, 'oidc-issuer', await startOidcIssuer());

  const sessionPort = await freePort();
  const sessionServiceUrl = `http://127.0.0.1:${sessionPort}`;
  const wiring = { brokers: kafka.brokers, redisUrl: redis.url, sessionServiceUrl };
  /** What `name` gets from the stack, for instance `label`, plus this run's topic. */
  const appEnv = (name, label) => ({
    ...wiringEnv({ name, instanceId: label, ...wiring }),
    REVOCATION_TOPIC: topic,
    LOG_LEVEL: 'warn',
  });
  const launch = (name, label, port, env) =>
    startApp({
      name,
      label,
      port,
      logFile: join(dataDir, 'logs', `${label}.log`),
      env: { ...appEnv(name, label), ...env },
    }).then((app) => run.track(Stage.app, label, app, () => app.stop(10_000)));

  // The publisher provisions the topic the API instances read: it is ready before they start.
  const apps = await Promise.allSettled([
    launch('session-service', 'session-service', sessionPort, {
      ...UNTHROTTLED,
      OIDC_ISSUERS: JSON.stringify([
        { issuer: issuer.issuer, jwks_uri: issuer.jwksUri, audience: issuer.audience },
      ]),
      ...sessionEnv,
    }),
    freePort().then((port) =>
      launch('revocation-publisher', 'revocation-publisher', port, publisherEnv),
    ),
  ]);
  const appFailed = apps.find((app) => app.status === 'rejected');
  if (appFailed) throw appFailed.reason;
  const [sessionService, publisher] = apps.map((app) => app.value);
  log(`session service ${sessionService.url}, publisher ${publisher.url} (topic ${topic})`);

  return {
    kafka,
    redis,
    issuer,
    sessionService,
    publisher,
    topic,
    appEnv,
    /** Starts one instance of an API service with the stack's wiring; resolves once ready. */
    startApi: async (name, label, env = {}) => launch(name, label, await freePort(), env),
  };
}

/**
 * Opens `count` sessions through POST /auth/oidc, `inFlight` at a time, each for a user of its
 * own (no device limit is met, so no sign-in revokes another session).
 */
export async function openSessions(core, count, { tag, inFlight = 16 } = {}) {
  const sessions = [];
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const idToken = await core.issuer.sign({ sub: `bench-${tag}-${i}` }, { expiresIn: 600 });
      const reply = await post(`${core.sessionService.url}/auth/oidc`, {
        id_token: idToken,
        device: { name: `bench-${i}` },
      });
      if (reply.status !== 200)
        throw new Error(`OIDC sign-in answered ${reply.status}: ${reply.text.slice(0, 200)}`);
      const body = JSON.parse(reply.text);
      sessions[i] = { accessToken: body.access_token, sessionId: body.session_id };
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, count) }, worker));
  return sessions;
}

/**
 * Starts a Node entry point of this repository's build (e.g. dist/bench/overhead-app/main.js)
 * as an app: its own process, the apps' Node flags, ready once `/health/ready` answers 200.
 */
export async function startEntry(run, { label, entry, env, logFile, readyTimeoutMs = 60_000 }) {
  const port = await freePort();
  const proc = startProcess(process.execPath, [...NODE_FLAGS, join(root, entry)], {
    name: label,
    logFile,
    env: {
      ...process.env,
      NODE_ENV: 'development',
      LOG_LEVEL: 'warn',
      ...env,
      HTTP_HOST: '127.0.0.1',
      HTTP_PORT: String(port),
    },
  });
  const url = `http://127.0.0.1:${port}`;
  run.track(Stage.app, label, proc, () => proc.stop(10_000));
  await waitFor(
    `${label} at ${url}/health/ready`,
    async () => (await fetch(`${url}/health/ready`)).ok,
    { timeoutMs: readyTimeoutMs, intervalMs: 250, isAlive: proc.isAlive },
  );
  return { ...proc, url, port, label };
}
