import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { StopWaiting, eventually, uniqueName, type TestOidcIssuer } from '@app/testing';
import { decodeJwt } from 'jose';
import { startApp, wiringEnv, type AppHandle } from '../../scripts/apps.mjs';
import { startKafka, type KafkaHandle, type KafkaSecurity } from '../../scripts/kafka/kafka.mjs';
import { freePort } from '../../scripts/lib/process.mjs';
import { startRedis, type RedisHandle } from '../../scripts/redis/redis.mjs';

// The whole system as `npm run stack` runs it, for the end-to-end revocation tests: its own
// Kafka broker and Redis (the tests kill the broker), the session service, the publisher and
// two instances of each API service, every app a separate process started from dist/ with
// the stack's wiring (`wiringEnv`), plus the settings these tests need.

export const API_SERVICES = ['content-api', 'account-api'] as const;

export interface Reply {
  status: number;
  body: Record<string, unknown>;
  headers: Headers;
}

/** One HTTP call with a JSON body and/or a bearer token; never hangs longer than 10 s. */
export async function call(
  baseUrl: string,
  method: string,
  path: string,
  { token, body }: { token?: string; body?: unknown } = {},
): Promise<Reply> {
  const headers: Record<string, string> = {};
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers,
    body: body === undefined ? null : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  return {
    status: response.status,
    body: parseBody(await response.text()),
    headers: response.headers,
  };
}

function parseBody(text: string): Record<string, unknown> {
  try {
    return text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    return { text };
  }
}

/** A signed-in device: its tokens and who it is, as the session service issued them. */
export interface Session {
  label: string;
  accessToken: string;
  refreshToken: string;
  sessionId: string;
  sub: string;
}

export interface SystemOptions {
  /** Extra environment per app name, on top of the stack's wiring. */
  env?: Partial<Record<string, Record<string, string>>>;
  /** Instances of each API service (default 2). */
  apisPerService?: number;
  /**
   * A broker that requires SASL (and TLS): the publisher connects as user `publisher`, the
   * API services as `api`. `prepareKafka` runs before any app starts (e.g. to create ACLs).
   */
  kafkaSecurity?: KafkaSecurity;
  prepareKafka?: (kafka: KafkaHandle, topic: string) => Promise<void>;
}

/** Which Kafka user each app is on a secured broker. */
const KAFKA_USER: Partial<Record<string, string>> = {
  'revocation-publisher': 'publisher',
  'content-api': 'api',
  'account-api': 'api',
};

export class RevocationSystem {
  readonly topic = uniqueName('e2e-revocations');
  readonly dataDir = join(process.env.TEST_DATA_DIR ?? '/tmp', uniqueName('revocation-e2e'));
  readonly logDir = join(this.dataDir, 'logs');
  kafka!: KafkaHandle;
  redis!: RedisHandle;
  sessionService!: AppHandle;
  publisher!: AppHandle;
  /** The running API instances that "everywhere" means: two of each API service. */
  readonly apis: AppHandle[] = [];
  /** Every app process ever started, for stopping and for telling a crash from a test failure. */
  private readonly started: AppHandle[] = [];
  private readonly deliberatelyStopped = new Set<AppHandle>();
  private readonly crashes: string[] = [];
  sessionServiceUrl = '';

  constructor(private readonly options: SystemOptions = {}) {}

  async start(): Promise<void> {
    mkdirSync(this.dataDir, { recursive: true });
    const log = (message: string) => process.stderr.write(`${message}\n`);
    const [kafka, redis] = await Promise.allSettled([
      freePort().then((port) =>
        startKafka({
          port,
          dataDir: join(this.dataDir, 'kafka'),
          log,
          ...(this.options.kafkaSecurity ? { security: this.options.kafkaSecurity } : {}),
        }),
      ),
      startRedis({ dataDir: join(this.dataDir, 'redis'), appendfsync: 'always', log }),
    ]);
    if (kafka.status === 'fulfilled') this.kafka = kafka.value;
    if (redis.status === 'fulfilled') this.redis = redis.value;
    if (kafka.status === 'rejected') throw kafka.reason;
    if (redis.status === 'rejected') throw redis.reason;
    await this.options.prepareKafka?.(this.kafka, this.topic);

    const sessionPort = await freePort();
    this.sessionServiceUrl = `http://127.0.0.1:${sessionPort}`;
    // The publisher provisions the topic the API instances read: it starts first.
    const [session, publisher] = await Promise.allSettled([
      this.launch('session-service', 'session-service', sessionPort),
      freePort().then((port) => this.launch('revocation-publisher', 'revocation-publisher', port)),
    ]);
    if (session.status === 'fulfilled') this.sessionService = session.value;
    if (publisher.status === 'fulfilled') this.publisher = publisher.value;
    if (session.status === 'rejected') throw session.reason;
    if (publisher.status === 'rejected') throw publisher.reason;

    const instances = Array.from({ length: this.options.apisPerService ?? 2 }, (_, i) => i + 1);
    const apis = await Promise.allSettled(
      API_SERVICES.flatMap((name) => instances.map((i) => this.startApi(name, `${name}-${i}`))),
    );
    const failed = apis.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
    for (const api of apis) if (api.status === 'fulfilled') this.apis.push(api.value);
  }

  /** Starts one more API instance (not part of `apis`); resolves once /health/ready is 200. */
  startApi(name: string, label: string): Promise<AppHandle> {
    return freePort().then((port) => this.launch(name, label, port));
  }

  /** Crash: SIGKILL, as a dead machine would be. */
  async killPublisher(): Promise<void> {
    this.deliberatelyStopped.add(this.publisher);
    await this.publisher.kill();
  }

  /** Starts the publisher again with the same INSTANCE_ID and port; resolves once ready. */
  async restartPublisher(): Promise<void> {
    this.publisher = await this.launch(
      'revocation-publisher',
      this.publisher.label,
      this.publisher.port,
    );
  }

  async stopApp(app: AppHandle): Promise<void> {
    this.deliberatelyStopped.add(app);
    await app.stop(10_000);
  }

  /** Apps that exited while the tests did not stop them: names the logs to read. */
  crashed(): string | undefined {
    return this.crashes.length > 0
      ? `${this.crashes.join('; ')} (logs in ${this.logDir})`
      : undefined;
  }

  /** Stops every app, then Kafka and Redis; whatever fails, nothing is left running. */
  async stop(): Promise<void> {
    for (const app of this.started) this.deliberatelyStopped.add(app);
    await Promise.allSettled(this.started.map((app) => app.stop(10_000)));
    const servers = [this.kafka as KafkaHandle | undefined, this.redis as RedisHandle | undefined];
    await Promise.allSettled(
      servers.filter((server) => server !== undefined).map((server) => server.stop()),
    );
  }

  private async launch(name: string, label: string, port: number): Promise<AppHandle> {
    const app = await startApp({
      name,
      label,
      port,
      logFile: join(this.logDir, `${label}.log`),
      env: {
        ...wiringEnv({
          name,
          instanceId: label,
          brokers: this.kafka.brokers,
          redisUrl: this.redis.url,
          sessionServiceUrl: this.sessionServiceUrl,
        }),
        REVOCATION_TOPIC: this.topic,
        ...this.kafkaCredentials(name),
        ...this.options.env?.[name],
      },
    });
    this.started.push(app);
    void app.exit.then(({ code, signal }) => {
      if (!this.deliberatelyStopped.has(app))
        this.crashes.push(`${label} exited (code ${code}, signal ${signal})`);
    });
    return app;
  }

  /** KAFKA_SSL_CA_FILE and KAFKA_SASL_* for `name` on a secured broker. */
  private kafkaCredentials(name: string): Record<string, string> {
    const user = KAFKA_USER[name];
    const password = user && this.options.kafkaSecurity?.users[user];
    if (!user || !password) return {};
    return {
      ...(this.kafka.caFile ? { KAFKA_SSL_CA_FILE: this.kafka.caFile } : {}),
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_USERNAME: user,
      KAFKA_SASL_PASSWORD: password,
    };
  }

  // ---- the session service, as a client uses it ----

  async login(
    username: string,
    password: string,
    label: string,
  ): Promise<{ reply: Reply; session?: Session }> {
    const reply = await call(this.sessionServiceUrl, 'POST', '/auth/login', {
      body: { username, password, device: { name: label } },
    });
    return { reply, ...(reply.status === 200 ? { session: toSession(label, reply) } : {}) };
  }

  /** Signs in and insists on 200. */
  async signIn(username: string, password: string, label: string): Promise<Session> {
    const { reply, session } = await this.login(username, password, label);
    if (!session)
      throw new Error(`${label}: sign-in answered ${reply.status} ${JSON.stringify(reply.body)}`);
    return session;
  }

  /** Signs in with an ID token from a trusted OpenID Connect issuer; insists on 200. */
  async signInOidc(issuer: TestOidcIssuer, externalSub: string, label: string): Promise<Session> {
    const reply = await call(this.sessionServiceUrl, 'POST', '/auth/oidc', {
      body: { id_token: await issuer.sign({ sub: externalSub }), device: { name: label } },
    });
    if (reply.status !== 200)
      throw new Error(
        `${label}: OIDC sign-in answered ${reply.status} ${JSON.stringify(reply.body)}`,
      );
    return toSession(label, reply);
  }

  /** Rotates a refresh token: the new pair as a `Session` named `label` when it answers 200. */
  async refresh(refreshToken: string, label: string): Promise<{ reply: Reply; session?: Session }> {
    const reply = await call(this.sessionServiceUrl, 'POST', '/auth/refresh', {
      body: { refresh_token: refreshToken },
    });
    return { reply, ...(reply.status === 200 ? { session: toSession(label, reply) } : {}) };
  }

  /** A call to the session service with `session`'s access token. */
  as(session: Session, method: string, path: string, body?: unknown): Promise<Reply> {
    return call(this.sessionServiceUrl, method, path, {
      token: session.accessToken,
      ...(body === undefined ? {} : { body }),
    });
  }

  // ---- the API instances ----

  /**
   * Waits until every instance in `apis` answers `GET /me` for every session with
   * `expected`: "accepted" is 200 with that session's `{sub, session_id}`; "rejected" is 401
   * with `WWW-Authenticate: Bearer error="invalid_token"`. A bounded wait, not a timing claim.
   * It stops at once on what can never turn right: an accepted session answered 401 or with
   * someone else's identity, or a rejected one accepted again after a rejection.
   */
  async expectEverywhere(
    expected: 'accepted' | 'rejected',
    sessions: Session[],
    { apis = this.apis, timeoutMs = 30_000 }: { apis?: AppHandle[]; timeoutMs?: number } = {},
  ): Promise<void> {
    const seenRejected = new Set<string>();
    const what = `${sessions.map((s) => s.label).join(', ')} to be ${expected} by ${apis.map((a) => a.label).join(', ')}`;
    await eventually(
      what,
      async () => {
        const crash = this.crashed();
        if (crash) throw new StopWaiting(crash);
        const pending: string[] = [];
        await Promise.all(
          apis.flatMap((api) =>
            sessions.map(async (session) => {
              const pair = `${api.label} × ${session.label}`;
              const answer = await me(api, session);
              if (expected === 'accepted') {
                if (answer.status === 401)
                  throw new StopWaiting(`${pair}: a live session got 401 ${answer.detail}`);
                if (answer.status === 200 && !answer.identityMatches)
                  throw new StopWaiting(`${pair}: 200 with the wrong identity ${answer.detail}`);
                if (answer.status !== 200)
                  pending.push(`${pair}: ${answer.status} ${answer.detail}`);
              } else {
                if (answer.status === 401 && answer.invalidToken) seenRejected.add(pair);
                else if (answer.status === 200 && seenRejected.has(pair))
                  throw new StopWaiting(`${pair}: accepted again after a 401`);
                else pending.push(`${pair}: ${answer.status} ${answer.detail}`);
              }
            }),
          ),
        );
        if (pending.length > 0)
          throw new Error(`${pending.length} not yet: ${pending.slice(0, 6).join('; ')}`);
        return true;
      },
      { timeoutMs, intervalMs: 100 },
    );
  }
}

export interface MeAnswer {
  status: number;
  /** 200 with `{sub, session_id}` of the session whose token was sent. */
  identityMatches: boolean;
  /** `WWW-Authenticate: Bearer error="invalid_token"`, as RFC 6750 asks for a rejected token. */
  invalidToken: boolean;
  detail: string;
}

/** `GET /me` at one API instance with `session`'s access token. */
export async function me(api: AppHandle, session: Session): Promise<MeAnswer> {
  const reply = await call(api.url, 'GET', '/me', { token: session.accessToken });
  const challenge = reply.headers.get('www-authenticate') ?? '';
  return {
    status: reply.status,
    identityMatches: reply.body.sub === session.sub && reply.body.session_id === session.sessionId,
    invalidToken: /^Bearer\b.*\berror="invalid_token"/.test(challenge),
    detail: `${JSON.stringify(reply.body)}${challenge ? ` (WWW-Authenticate: ${challenge})` : ''}`,
  };
}

function toSession(label: string, reply: Reply): Session {
  const accessToken = String(reply.body.access_token);
  const claims = decodeJwt(accessToken);
  return {
    label,
    accessToken,
    refreshToken: String(reply.body.refresh_token),
    sessionId: String(reply.body.session_id),
    sub: String(claims.sub),
  };
}
