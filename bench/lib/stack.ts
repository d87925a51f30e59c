// The system as `npm run stack` runs it (scripts/system.ts), started for a benchmark on free
// loopback ports in the run's data folder: Kafka, Redis, a local OpenID Connect issuer (so
// sessions are cheap to open: no scrypt), the session service, the publisher and any number
// of API instances, each app a process of its own from dist/ with the stack's wiring.
import { exportJWK, generateKeyPair } from 'jose';
import { randomBytes, scryptSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type { TestOidcIssuer } from '@app/testing';
import { freePort } from '../../scripts/lib/process.ts';
import {
  devIdpIssuer,
  startApp,
  startSystem,
  type AppHandle,
  type AppName,
  type RunningSystem,
} from '../../scripts/system.ts';
import { builtLib } from './built.ts';
import { bearer, post, type TokenReply } from './http.ts';
import { inParallel, log, Stage, type BenchRun } from './run.ts';

/** The password of every user `writeBenchUsers` writes. */
export const BENCH_PASSWORD = 'bench-pass';

/**
 * Bench users for the session service's USERS_FILE: `bench-<i>`, all with BENCH_PASSWORD under
 * one cheap scrypt hash (N=16), so a password sign-in costs no hashing time worth measuring.
 */
export function writeBenchUsers(file: string, count: number): void {
  const salt = randomBytes(16);
  const hash = scryptSync(BENCH_PASSWORD, salt, 32, { N: 16, r: 1, p: 1 });
  const password_hash = `scrypt$16$1$1$${salt.toString('base64')}$${hash.toString('base64')}`;
  const users = Array.from({ length: count }, (_, i) => ({
    ...{ id: `bench-${i}`, username: `bench-${i}`, password_hash, roles: ['user'] },
  }));
  writeFileSync(file, JSON.stringify(users));
}

/**
 * What a benchmark's session service gets: limits raised so that its sign-ins are never
 * throttled or evicted, and `issuer`'s ID tokens accepted at POST /auth/oidc, as well as the
 * dev OpenID provider's when the system runs one.
 */
export function benchSessionEnv(
  issuer: TestOidcIssuer,
  devIdpUrl?: string,
): Record<string, string> {
  return {
    RATE_LIMIT_PER_IP: '1000000',
    RATE_LIMIT_FAILS_PER_USERNAME: '1000000',
    // The schema caps it at 1,000; every benchmark session has a user of its own anyway.
    DEFAULT_MAX_DEVICES: '1000',
    OIDC_ISSUERS: JSON.stringify([
      { issuer: issuer.issuer, jwks_uri: issuer.jwksUri, audience: issuer.audience },
      ...(devIdpUrl ? [devIdpIssuer(devIdpUrl)] : []),
    ]),
  };
}

/** A P-256 private JWK as SIGNING_KEYS takes it: ES256, which jsonwebtoken verifies too. */
export async function es256SigningKeys(): Promise<string> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  return JSON.stringify([{ ...jwk, kid: 'bench-es256', alg: 'ES256', use: 'sig' }]);
}

export type Core = Awaited<ReturnType<typeof startCore>>;

/**
 * Starts the OIDC issuer, then Kafka, Redis, the session service, the publisher and `apps`
 * (`startSystem`, `instances` of each); all of it is tracked by `run`, so it is stopped
 * whatever happens next. `env` adds to an app's environment.
 */
export async function startCore(
  run: BenchRun,
  {
    topic,
    apps = [],
    instances,
    env = {},
    topology = 'single',
    dataDir = run.dataDir,
  }: {
    topic: string;
    apps?: AppName[];
    instances?: Partial<Record<AppName, number>>;
    env?: Partial<Record<AppName, Record<string, string>>>;
    /** `cluster`: three Kafka nodes and a Redis Cluster (`startSystem`'s topology). */
    topology?: 'single' | 'cluster';
    /** Where Kafka's and Redis's data and the logs go (the run's data folder by default). */
    dataDir?: string;
  },
) {
  const issuer = run.track(
    Stage.infrastructure,
    'oidc-issuer',
    await builtLib('testing').startOidcIssuer(),
  );
  const ownEnv = (name: AppName, _label: string, system: RunningSystem) => ({
    REVOCATION_TOPIC: topic,
    LOG_LEVEL: 'warn',
    ...(name === 'session-service' && benchSessionEnv(issuer, system.devIdpUrl)),
    ...env[name],
  });
  const bootStart = Date.now();
  // The system stops its apps before Kafka and Redis; tracked once started, as it cleans up
  // after itself when it does not start.
  const system = run.track(
    Stage.infrastructure,
    'system',
    await startSystem({
      dataDir,
      apps: ['session-service', 'revocation-publisher', ...apps],
      instances,
      topology,
      redis: { appendfsync: 'everysec' },
      env: ownEnv,
      log,
    }),
  );
  // On a cluster: its brokers, and the first node's process (for CPU figures).
  const kafka = system.kafka ?? system.kafkaCluster;
  const redis = system.redis ?? system.redisCluster?.members[0];
  if (!kafka || !redis) throw new Error('the system runs no Kafka or Redis of its own');
  const sessionService = system.app('session-service');
  log(
    `Kafka ${kafka.brokers}, Redis ${system.redisClusterNodes || redis.url}, ${system.apps.map((app) => `${app.label} ${app.url}`).join(', ')} ` +
      `up in ${Date.now() - bootStart} ms (topic ${topic})`,
  );
  return { system, kafka, redis, issuer, sessionService, topic };
}

export interface Session {
  accessToken: string;
  sessionId: string;
}

/**
 * Opens `count` sessions through POST /auth/oidc, `inFlight` at a time, each for a user of its
 * own (no device limit is met, so no sign-in revokes another session).
 */
export async function openSessions(
  core: Pick<Core, 'issuer' | 'sessionService'>,
  count: number,
  { tag, inFlight = 16 }: { tag: string; inFlight?: number },
): Promise<Session[]> {
  const sessions: Session[] = [];
  await inParallel(count, inFlight, async (i) => {
    const idToken = await core.issuer.sign({ sub: `bench-${tag}-${i}` }, { expiresIn: 600 });
    const reply = await post(`${core.sessionService.url}/auth/oidc`, {
      id_token: idToken,
      device: { name: `bench-${i}` },
    });
    if (reply.status !== 200)
      throw new Error(`OIDC sign-in answered ${reply.status}: ${reply.text.slice(0, 200)}`);
    const body = JSON.parse(reply.text) as TokenReply;
    sessions[i] = { accessToken: body.access_token, sessionId: body.session_id };
  });
  return sessions;
}

interface SessionServiceOptions {
  label: string;
  issuer: TestOidcIssuer;
  redisUrl: string;
  logFile: string;
  env?: Record<string, string>;
}

/** POST /auth/logout with the session's own access token; fails unless it answers 204. */
export async function logOut(sessionServiceUrl: string, accessToken: string): Promise<void> {
  const reply = await post(`${sessionServiceUrl}/auth/logout`, undefined, {
    headers: bearer(accessToken),
  });
  if (reply.status !== 204) throw new Error(`logout answered ${reply.status}: ${reply.text}`);
}

/**
 * A session service of the benchmark's own, without Kafka (nothing relays its outbox), on
 * `redisUrl` and trusting `issuer`'s ID tokens: a process from dist/, tracked by `run`.
 */
export async function startSessionService(
  run: BenchRun,
  { label, issuer, redisUrl, logFile, env = {} }: SessionServiceOptions,
): Promise<AppHandle> {
  const service = await startApp({
    name: 'session-service',
    label,
    port: await freePort(),
    logFile,
    env: {
      ...benchSessionEnv(issuer),
      NODE_ENV: 'development',
      REDIS_URL: redisUrl,
      LOG_LEVEL: 'warn',
      ...env,
    },
  });
  return run.track(Stage.app, label, service, () => service.stop(10_000));
}
