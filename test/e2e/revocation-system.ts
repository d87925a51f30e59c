import { join } from 'node:path';
import {
  call,
  StopWaiting,
  eventually,
  uniqueName,
  type Reply,
  type TestOidcIssuer,
} from '@app/testing';
import { decodeJwt } from 'jose';
import type { KafkaHandle, KafkaSecurity } from '../../scripts/kafka/kafka.ts';
import type { KafkaClusterHandle } from '../../scripts/kafka/kafka.ts';
import type { RedisClusterHandle, RedisHandle } from '../../scripts/redis/redis.ts';
import {
  startSystem,
  type AppHandle,
  type AppName,
  type RunningSystem,
} from '../../scripts/system.ts';

// The whole system as `npm run stack` runs it (`startSystem`), for the end-to-end revocation
// tests: its own Kafka broker and Redis (the tests kill the broker), the session service, the
// publisher and two instances of each API service, every app a separate process from dist/,
// plus the settings these tests need, and the calls a client makes.

export { call, type Reply } from '@app/testing';

export const API_SERVICES = ['content-api', 'account-api'] as const;

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
  env?: Partial<Record<AppName, Record<string, string>>>;
  /** Instances of each API service (default 2). */
  apisPerService?: number;
  /**
   * A broker that requires SASL (and TLS): the publisher connects as user `publisher`, the
   * API services as `api`. `prepareKafka` runs before any app starts (e.g. to create ACLs).
   */
  kafkaSecurity?: KafkaSecurity;
  prepareKafka?: (kafka: KafkaHandle, topic: string) => Promise<void>;
  /**
   * `single` (default): one Kafka broker and one Redis. `cluster`: three Kafka nodes and a
   * Redis Cluster of three primaries and three replicas (see `startSystem`); no `kafkaSecurity`.
   */
  topology?: 'single' | 'cluster';
  /** Also one gateway instance (`gateway`), in front of the API services. */
  gateway?: boolean;
}

/** Which Kafka user each app is on a secured broker. */
const KAFKA_USER: Partial<Record<AppName, string>> = {
  'revocation-publisher': 'publisher',
  'content-api': 'api',
  'account-api': 'api',
};

export class RevocationSystem {
  readonly topic = uniqueName('e2e-revocations');
  readonly dataDir = join(process.env.TEST_DATA_DIR ?? '/tmp', uniqueName('revocation-e2e'));
  readonly logDir = join(this.dataDir, 'logs');
  private system!: RunningSystem;
  /** The running API instances that "everywhere" means: two of each API service. */
  readonly apis: AppHandle[] = [];

  constructor(private readonly options: SystemOptions = {}) {}

  get kafka(): KafkaHandle {
    return this.running.kafka as KafkaHandle;
  }

  get redis(): RedisHandle {
    return this.running.redis as RedisHandle;
  }

  /** The three Kafka nodes on topology `cluster`. */
  get kafkaCluster(): KafkaClusterHandle {
    return this.running.kafkaCluster as KafkaClusterHandle;
  }

  /** The Redis Cluster on topology `cluster`. */
  get redisCluster(): RedisClusterHandle {
    return this.running.redisCluster as RedisClusterHandle;
  }

  /** Every broker, as the apps' KAFKA_BROKERS. */
  get brokers(): string {
    return this.running.brokers;
  }

  /** The gateway instance (option `gateway`). */
  get gateway(): AppHandle {
    return this.running.app('gateway');
  }

  get sessionServiceUrl(): string {
    return this.running.sessionServiceUrl;
  }

  get sessionService(): AppHandle {
    return this.running.app('session-service');
  }

  get publisher(): AppHandle {
    return this.running.app('revocation-publisher');
  }

  private get running(): RunningSystem {
    return this.system;
  }

  async start(): Promise<void> {
    const security = this.options.kafkaSecurity;
    this.system = await startSystem({
      dataDir: this.dataDir,
      // The gateway has end-to-end tests of its own (apps/gateway/test, test/e2e/console…).
      apps: [
        'session-service',
        'revocation-publisher',
        ...API_SERVICES,
        ...(this.options.gateway ? (['gateway'] as const) : []),
      ],
      instances: Object.fromEntries(
        API_SERVICES.map((name) => [name, this.options.apisPerService ?? 2]),
      ),
      topology: this.options.topology ?? 'single',
      kafka: security ? { security } : {},
      redis: { appendfsync: 'always' },
      env: (name, _label, system) => ({
        REVOCATION_TOPIC: this.topic,
        ...this.kafkaCredentials(name, system.kafka),
        ...this.options.env?.[name],
      }),
      beforeApps: async (system) => {
        if (system.kafka) await this.options.prepareKafka?.(system.kafka, this.topic);
      },
    });
    this.apis.push(...API_SERVICES.flatMap((name) => this.system.instances(name)));
  }

  /** Starts one more API instance (not part of `apis`); resolves once /health/ready is 200. */
  startApi(name: (typeof API_SERVICES)[number], label: string): Promise<AppHandle> {
    return this.system.startApp(name, { label });
  }

  /**
   * Starts one more session-service instance on the same Kafka and Redis (not the one
   * `sessionServiceUrl` names), with `env` on top of the system's; resolves once it is ready.
   * Its tokens verify at the APIs only if both instances sign with the same SIGNING_KEYS.
   */
  startSessionService(label: string, env: Record<string, string> = {}): Promise<AppHandle> {
    return this.system.startApp('session-service', { label, env });
  }

  /** Crash: SIGKILL, as a dead machine would be. */
  async killPublisher(): Promise<void> {
    this.killedPublisher = this.publisher;
    await this.system.stopApp(this.killedPublisher, { crash: true });
  }

  /** Starts the publisher again with the same INSTANCE_ID and port; resolves once ready. */
  async restartPublisher(): Promise<void> {
    if (!this.killedPublisher) throw new Error('the publisher was not killed');
    await this.system.restartApp(this.killedPublisher);
    this.killedPublisher = undefined;
  }

  private killedPublisher: AppHandle | undefined;

  stopApp(app: AppHandle): Promise<void> {
    return this.system.stopApp(app);
  }

  /** Apps that exited while the tests did not stop them: names the logs to read. */
  crashed(): string | undefined {
    return this.system.crashed();
  }

  /** Stops every app, then Kafka and Redis; whatever fails, nothing is left running. */
  async stop(): Promise<void> {
    await (this.system as RunningSystem | undefined)?.stop();
  }

  /** KAFKA_SSL_CA_FILE and KAFKA_SASL_* for `name` on a secured broker. */
  private kafkaCredentials(name: AppName, kafka: KafkaHandle | undefined): Record<string, string> {
    const user = KAFKA_USER[name];
    const password = user && this.options.kafkaSecurity?.users[user];
    if (!user || !password) return {};
    return {
      ...(kafka?.caFile ? { KAFKA_SSL_CA_FILE: kafka.caFile } : {}),
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

/** The session a sign-in's 200 answer opened; throws on any other answer. */
export function toSession(label: string, reply: Reply): Session {
  if (reply.status !== 200)
    throw new Error(`${label}: sign-in answered ${reply.status} ${JSON.stringify(reply.body)}`);
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
