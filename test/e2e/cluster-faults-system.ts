import { join } from 'node:path';
import { call, eventually, StopWaiting, uniqueName, type TestOidcIssuer } from '@app/testing';
import {
  allOutboxStreams,
  DEFAULT_OUTBOX_SHARDS,
  OUTBOX_GROUP,
  OutboxField,
  type OutboxLayout,
} from '@app/contracts';
import { Redis } from 'ioredis';
import { ConfigResourceTypes, Kafka, logLevel } from 'kafkajs';
import {
  startKafkaCluster,
  type KafkaClusterHandle,
  type KafkaNode,
} from '../../scripts/kafka/kafka.ts';
import { startSystem, type AppHandle, type RunningSystem } from '../../scripts/system.ts';
import { API_SERVICES, me, toSession, type Session } from './revocation-system';

// The whole system (every app a process from dist/, two instances of each API service, one
// Redis) on a three-broker KRaft cluster of its own, for the Kafka fault tests: which broker
// leads what, stopping, killing and pausing brokers, and what the outbox still holds.

/** The session service's and the publisher's default outbox layout. */
const OUTBOX: OutboxLayout = { prefix: 'sr:', shards: DEFAULT_OUTBOX_SHARDS };

/** One partition of the revocation topic as the cluster describes it. */
export interface PartitionState {
  partition: number;
  leader: number;
  replicas: number[];
  isr: number[];
}

export class ClusterFaultSystem {
  readonly topic = uniqueName('cluster-revocations');
  readonly dataDir = join(process.env.TEST_DATA_DIR ?? '/tmp', uniqueName('cluster-faults'));
  cluster!: KafkaClusterHandle;
  private system: RunningSystem | undefined;
  /** The API instances "everywhere" means: two of each API service. */
  readonly apis: AppHandle[] = [];
  /** Brokers paused with SIGSTOP, resumed whatever happens (`resume`, `stop`). */
  private readonly paused = new Set<KafkaNode>();
  private redisClient: Redis | undefined;

  constructor(private readonly issuer: TestOidcIssuer) {}

  async start(): Promise<void> {
    this.cluster = await startKafkaCluster({
      dataDir: join(this.dataDir, 'kafka'),
      log: () => undefined,
    });
    this.system = await startSystem({
      dataDir: this.dataDir,
      apps: ['session-service', 'revocation-publisher', ...API_SERVICES],
      instances: 2,
      kafka: { brokers: this.cluster.brokers },
      redis: { appendfsync: 'always' },
      env: (name) => {
        const common = { REVOCATION_TOPIC: this.topic };
        switch (name) {
          case 'session-service':
            return {
              ...common,
              RATE_LIMIT_FAILS_PER_USERNAME: '10000',
              RATE_LIMIT_PER_IP: '100000',
              DEFAULT_MAX_DEVICES: '1000',
              OIDC_ISSUERS: JSON.stringify([
                {
                  issuer: this.issuer.issuer,
                  jwks_uri: this.issuer.jwksUri,
                  audience: this.issuer.audience,
                },
              ]),
            };
          case 'revocation-publisher':
            // Retries soon once a broker is back. No TOPIC_REPLICATION_FACTOR nor
            // TOPIC_MIN_INSYNC_REPLICAS: the topic must get the cluster's own (3 and 2).
            return { ...common, PUBLISH_RETRY_MAX_MS: '1000' };
          case 'content-api':
          case 'account-api':
          case 'dev-idp':
          case 'gateway':
          case 'ssf-transmitter':
            return common;
        }
      },
    });
    this.apis.push(...API_SERVICES.flatMap((name) => this.running.instances(name)));
  }

  private get running(): RunningSystem {
    if (!this.system) throw new Error('the system is not started');
    return this.system;
  }

  /** Every app instance running now (session service, publisher, the four API instances). */
  get apps(): AppHandle[] {
    return [...this.running.apps];
  }

  get publisher(): AppHandle {
    return this.running.app('revocation-publisher');
  }

  crashed(): string | undefined {
    return this.running.crashed();
  }

  /** Resumes paused brokers, stops every app, then the cluster; nothing is left running. */
  async stop(): Promise<void> {
    this.resumeAll();
    this.redisClient?.disconnect();
    await this.system?.stop();
    await (this.cluster as KafkaClusterHandle | undefined)?.stop();
  }

  // ---- the brokers ----

  node(id: number): KafkaNode {
    const node = this.cluster.nodes.find((n) => n.nodeId === id);
    if (!node) throw new Error(`no broker ${id}`);
    return node;
  }

  /** SIGSTOP: the broker's sockets stay open and nothing answers, as behind a partition. */
  pause(node: KafkaNode): void {
    if (node.pid === undefined) throw new Error(`broker ${node.nodeId} has no process`);
    // Even if this process exits mid-test, no broker stays stopped (a stopped process would
    // not act on the SIGTERM its parent's death sends it).
    process.once('exit', () => {
      this.resumeAll();
    });
    this.paused.add(node);
    process.kill(node.pid, 'SIGSTOP');
  }

  resume(node: KafkaNode): void {
    if (!this.paused.delete(node) || node.pid === undefined || !node.isAlive()) return;
    process.kill(node.pid, 'SIGCONT');
  }

  resumeAll(): void {
    for (const node of [...this.paused]) this.resume(node);
  }

  /** Starts every broker that is down, and waits until each partition is on all 3 in sync. */
  async restoreBrokers(): Promise<void> {
    this.resumeAll();
    // Nothing to restore when the cluster did not start (beforeAll reports why).
    const cluster = this.cluster as KafkaClusterHandle | undefined;
    if (!cluster) return;
    await Promise.all(cluster.nodes.filter((n) => !n.isAlive()).map((n) => n.restart()));
    await eventually(
      `every partition of ${this.topic} in sync on all 3 brokers`,
      async () => (await this.partitions()).every((p) => p.isr.length === 3),
      { timeoutMs: 90_000, intervalMs: 500 },
    );
  }

  /** An admin call through the brokers that run and are not paused. */
  private async withAdmin<T>(work: (admin: ReturnType<Kafka['admin']>) => Promise<T>): Promise<T> {
    const brokers = this.cluster.nodes
      .filter((n) => n.isAlive() && !this.paused.has(n))
      .map((n) => n.brokers);
    const admin = new Kafka({
      clientId: 'cluster-faults-test',
      brokers,
      logLevel: logLevel.NOTHING,
      connectionTimeout: 1_000,
      requestTimeout: 5_000,
      retry: { retries: 1, initialRetryTime: 100 },
    }).admin();
    await admin.connect();
    try {
      return await work(admin);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  /** The revocation topic's partitions: leader, replicas and in-sync replicas of each. */
  partitions(): Promise<PartitionState[]> {
    return this.withAdmin(async (admin) => {
      const { topics } = await admin.fetchTopicMetadata({ topics: [this.topic] });
      return (topics[0]?.partitions ?? []).map((p) => ({
        partition: p.partitionId,
        leader: p.leader,
        replicas: p.replicas,
        isr: p.isr,
      }));
    });
  }

  /** The revocation topic's effective min.insync.replicas (its own, or the cluster's). */
  minInsyncReplicas(): Promise<string | undefined> {
    return this.withAdmin(async (admin) => {
      const { resources } = await admin.describeConfigs({
        resources: [
          {
            type: ConfigResourceTypes.TOPIC,
            name: this.topic,
            configNames: ['min.insync.replicas'],
          },
        ],
        includeSynonyms: false,
      });
      return resources[0]?.configEntries[0]?.configValue;
    });
  }

  /** The broker leading the most partitions (the lowest id among equals), and how many. */
  async busiestLeader(): Promise<{ node: KafkaNode; leads: number; of: number }> {
    const partitions = await this.partitions();
    const counts = new Map<number, number>();
    for (const { leader } of partitions) counts.set(leader, (counts.get(leader) ?? 0) + 1);
    const [id, leads] = [...counts].sort(([a, x], [b, y]) => y - x || a - b)[0] ?? [-1, 0];
    return { node: this.node(id), leads, of: partitions.length };
  }

  /** Waits until no partition is led by `node` and every partition has a leader. */
  async leadershipMovedOff(node: KafkaNode, timeoutMs = 60_000): Promise<PartitionState[]> {
    return eventually(
      `every partition of ${this.topic} led by another broker than ${node.nodeId}`,
      async () => {
        const partitions = await this.partitions();
        const moved = partitions.every((p) => p.leader >= 0 && p.leader !== node.nodeId);
        return moved && partitions.length > 0 ? partitions : undefined;
      },
      { timeoutMs, intervalMs: 250 },
    );
  }

  // ---- the outbox (Redis) ----

  private get redis(): Redis {
    this.redisClient ??= new Redis(this.running.redisUrl, { maxRetriesPerRequest: 1 });
    return this.redisClient;
  }

  /**
   * What the outbox holds: its entries (the publisher deletes an entry when Kafka acknowledged
   * it), those delivered to the publisher and not acknowledged (the group's pending list), and
   * the session ids the entries' events name among `sessionIds`.
   */
  async outbox(sessionIds: string[] = []): Promise<{
    entries: number;
    pending: number;
    holding: Set<string>;
  }> {
    let entries = 0;
    let pending = 0;
    const holding = new Set<string>();
    for (const stream of allOutboxStreams(OUTBOX)) {
      entries += await this.redis.xlen(stream);
      const summary = (await this.redis.xpending(stream, OUTBOX_GROUP).catch(() => [0])) as [
        number,
        ...unknown[],
      ];
      pending += summary[0];
      const items = await this.redis.xrange(stream, '-', '+');
      for (const [, flat] of items) {
        const at = flat.indexOf(OutboxField.Event);
        const event = at >= 0 ? (flat[at + 1] ?? '') : '';
        for (const sid of sessionIds) if (event.includes(sid)) holding.add(sid);
      }
    }
    return { entries, pending, holding };
  }

  // ---- the apps, as a client and an operator see them ----

  /** Signs in as `externalSub` at the test OpenID provider (no password hashing: fast). */
  async signIn(externalSub: string, label: string): Promise<Session> {
    const reply = await call(this.running.sessionServiceUrl, 'POST', '/auth/oidc', {
      body: { id_token: await this.issuer.sign({ sub: externalSub }), device: { name: label } },
    });
    return toSession(label, reply);
  }

  /** Ends `session` at the session service; resolves with the HTTP status. */
  async logout(session: Session): Promise<number> {
    const reply = await call(this.running.sessionServiceUrl, 'POST', '/auth/logout', {
      token: session.accessToken,
    });
    return reply.status;
  }

  /** A Prometheus sample of `app`: the sum of the lines of `metric` matching `labels`. */
  async metric(app: AppHandle, metric: string, labels = ''): Promise<number> {
    const text = await (await fetch(`${app.url}/metrics`)).text();
    return text
      .split('\n')
      .filter((line) => line.startsWith(metric) && line.includes(labels))
      .map((line) => Number(line.split(' ').at(-1)))
      .filter((value) => Number.isFinite(value))
      .reduce((sum, value) => sum + value, 0);
  }

  /** Waits until every app running answers /health/ready with 200. */
  async allReady(timeoutMs = 60_000): Promise<void> {
    await eventually(
      'every app ready',
      async () => {
        const crash = this.crashed();
        if (crash) throw new StopWaiting(crash);
        const states = await Promise.all(
          this.apps.map(async (app) => {
            const response = await fetch(`${app.url}/health/ready`).catch(() => undefined);
            return response?.ok ? undefined : `${app.label}: ${response?.status ?? 'no answer'}`;
          }),
        );
        const notReady = states.filter((state) => state !== undefined);
        if (notReady.length > 0) throw new Error(`not ready: ${notReady.join(', ')}`);
        return true;
      },
      { timeoutMs, intervalMs: 250 },
    );
  }

  /**
   * Waits until every instance in `apis` refuses each of `sessions` (401 with
   * `WWW-Authenticate: Bearer error="invalid_token"`), asking again only the pairs not yet
   * refused, a few at a time; then asks every pair once more: none may be accepted again.
   * Stops at once when an app crashed or a token was answered with another identity.
   */
  async expectRevokedEverywhere(
    sessions: Session[],
    { timeoutMs = 60_000 }: { timeoutMs?: number } = {},
  ): Promise<void> {
    const pairs = this.apis.flatMap((api) => sessions.map((session) => ({ api, session })));
    let waiting = pairs;
    await eventually(
      `${sessions.length} sessions refused by ${this.apis.length} API instances`,
      async () => {
        const crash = this.crashed();
        if (crash) throw new StopWaiting(crash);
        const answers = await inBatches(waiting, 32, async ({ api, session }) => {
          const answer = await me(api, session);
          if (answer.status === 200 && !answer.identityMatches)
            throw new StopWaiting(`${api.label} × ${session.label}: ${answer.detail}`);
          return answer.status === 401 && answer.invalidToken ? undefined : answer;
        });
        const before = waiting;
        waiting = before.filter((_, i) => answers[i] !== undefined);
        if (waiting.length > 0) {
          const first = waiting[0];
          const answer = answers.find((a) => a !== undefined);
          throw new Error(
            `${waiting.length} of ${pairs.length} not yet, e.g. ${first?.api.label} × ${first?.session.label}: ${answer?.status} ${answer?.detail}`,
          );
        }
        return true;
      },
      { timeoutMs, intervalMs: 200 },
    );
    const again = await inBatches(pairs, 32, async ({ api, session }) => {
      const answer = await me(api, session);
      return answer.status === 401 && answer.invalidToken
        ? undefined
        : `${api.label} × ${session.label}: ${answer.status} ${answer.detail}`;
    });
    expect(again.filter((line) => line !== undefined)).toEqual([]);
  }

  /** Waits until every instance in `apis` accepts each of `sessions` with its own identity;
   * a 401 stops at once (a live session refused never turns right). */
  async expectAcceptedEverywhere(sessions: Session[], timeoutMs = 60_000): Promise<void> {
    const pairs = this.apis.flatMap((api) => sessions.map((session) => ({ api, session })));
    await eventually(
      `${sessions.length} sessions accepted by ${this.apis.length} API instances`,
      async () => {
        const crash = this.crashed();
        if (crash) throw new StopWaiting(crash);
        const answers = await inBatches(pairs, 32, async ({ api, session }) => {
          const answer = await me(api, session);
          const pair = `${api.label} × ${session.label}`;
          if (answer.status === 401) throw new StopWaiting(`${pair}: 401 ${answer.detail}`);
          if (answer.status === 200 && !answer.identityMatches)
            throw new StopWaiting(`${pair}: another identity ${answer.detail}`);
          return answer.status === 200 ? undefined : `${pair}: ${answer.status} ${answer.detail}`;
        });
        const waiting = answers.filter((line) => line !== undefined);
        if (waiting.length > 0) throw new Error(`${waiting.length} not yet: ${waiting[0]}`);
        return true;
      },
      { timeoutMs, intervalMs: 200 },
    );
  }
}

/** `work` over `items`, at most `size` at a time; results in the items' order. */
export async function inBatches<T, R>(
  items: T[],
  size: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(size, items.length) }, worker));
  return results;
}
