import {
  AUTHORIZATION_SCHEME_BEARER,
  buildSessionRevokedSet,
  buildVerificationSet,
  DELIVERY_POLL,
  DELIVERY_PUSH,
  SESSION_REVOKED,
  SSF_SPEC_VERSION,
  type RevocationEvent,
  type SessionRevokedSet,
} from '@app/contracts';
import { KAFKA } from '@app/kafka/nest';
import { METRICS_REGISTRY, type ReadinessCheck } from '@app/observability';
import { REDIS, type RedisClient } from '@app/redis';
import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { Kafka } from 'kafkajs';
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import type { Registry } from 'prom-client';
import type { z } from 'zod';
import type { SsfClient, SsfEnv } from './config';
import { PushClient } from './delivery/push-client';
import { PushWorker } from './delivery/push-worker';
import { RevocationIntake } from './intake/revocation-intake';
import { ssfMetrics, type SsfMetrics } from './metrics';
import { SigningKey } from './signing-key';
import {
  checkedSettings,
  delivers,
  SsfError,
  streamConfiguration,
  subjectKey,
  type pollRequest,
  type ReceiverSettings,
  type StreamRecord,
  type StreamRequest,
  type StreamStatus,
  type subjectRequest,
} from './streams/stream-config';
import { StreamStore, type Outgoing } from './streams/stream-store';

const notFound = (streamId: string) =>
  new SsfError(404, 'not_found', `no stream ${streamId} for this client`);
const digest = (token: string) => createHash('sha256').update(token).digest();

/**
 * The SSF transmitter: streams (kept in Redis, mirrored in memory — one instance owns them),
 * their subjects and delivery, the intake from the revocation topic, the signing key. The
 * routes (routes.ts) call one method each; a client only ever reaches its own streams.
 */
@Injectable()
export class Transmitter implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('SsfTransmitter');
  private readonly store: StreamStore;
  readonly metrics: SsfMetrics;
  private key: SigningKey | undefined;
  private intake: RevocationIntake | undefined;
  private readonly streams = new Map<string, StreamRecord>();
  private readonly subjects = new Map<string, Map<string, string>>();
  private readonly workers = new Map<string, PushWorker>();
  private readonly pollWaiters = new Map<string, Set<() => void>>();
  private readonly clients: { client: SsfClient; digest: Buffer }[];

  constructor(
    private readonly config: ConfigService<SsfEnv, true>,
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(KAFKA) private readonly kafka: Kafka,
    @Inject(METRICS_REGISTRY) registry: Registry,
  ) {
    this.store = new StreamStore(redis, this.setting('SSF_KEY_PREFIX'));
    this.metrics = ssfMetrics(registry, () => this.queueDepths());
    this.clients = this.setting('SSF_CLIENTS').map((client) => ({
      client,
      digest: digest(client.token),
    }));
    if (this.clients.length === 0)
      this.logger.warn('SSF_CLIENTS is empty: every stream management call will be 401');
  }

  setting<K extends keyof SsfEnv>(key: K): SsfEnv[K] {
    return this.config.get(key, { infer: true });
  }

  get issuer(): string {
    return this.setting('SSF_ISSUER');
  }

  async onApplicationBootstrap(): Promise<void> {
    const configured = this.setting('SSF_SIGNING_KEY');
    this.key = configured
      ? await SigningKey.fromJwk(configured)
      : await SigningKey.fromRedis(this.redis, `${this.setting('SSF_KEY_PREFIX')}signing-key`);
    for (const stream of await this.store.all()) await this.remember(stream);
    this.intake = new RevocationIntake({
      kafka: this.kafka,
      topic: this.setting('REVOCATION_TOPIC'),
      groupId: this.setting('SSF_CONSUMER_GROUP'),
      store: this.store,
      metrics: this.metrics,
      logger: this.logger,
      setsFor: (event, topicAt) => this.setsFor(event, topicAt),
      queued: (ids) => {
        for (const id of ids) this.wake(id);
      },
    });
    // Not awaited: joining the group may take a while; readiness says when it has.
    this.intake.start().catch((error: unknown) => {
      this.logger.error(`revocation intake could not start: ${String(error)}`);
    });
  }

  async onApplicationShutdown(): Promise<void> {
    await this.intake?.stop().catch(() => undefined);
    await Promise.all([...this.workers.values()].map((worker) => worker.stop()));
    for (const waiters of this.pollWaiters.values()) for (const wake of waiters) wake();
  }

  /** Ready: the signing key is loaded and the intake has joined its consumer group. */
  get ready(): boolean {
    return this.key !== undefined && this.intake?.ready === true;
  }

  /** The client a bearer token belongs to, compared in constant time. */
  authenticate(token: string | undefined): SsfClient | undefined {
    if (token === undefined) return undefined;
    const given = digest(token);
    return this.clients.find((entry) => timingSafeEqual(entry.digest, given))?.client;
  }

  /** The discovery document (SSF 1.0 section 7.1). */
  configuration() {
    const iss = this.issuer;
    return {
      spec_version: SSF_SPEC_VERSION,
      issuer: iss,
      jwks_uri: `${iss}/jwks.json`,
      delivery_methods_supported: [DELIVERY_PUSH, DELIVERY_POLL],
      configuration_endpoint: `${iss}/ssf/streams`,
      status_endpoint: `${iss}/ssf/status`,
      add_subject_endpoint: `${iss}/ssf/subjects:add`,
      remove_subject_endpoint: `${iss}/ssf/subjects:remove`,
      verification_endpoint: `${iss}/ssf/verify`,
      authorization_schemes: [{ spec_urn: AUTHORIZATION_SCHEME_BEARER }],
      default_subjects: this.setting('SSF_DEFAULT_SUBJECTS'),
    };
  }

  jwks() {
    return { keys: this.key ? [this.key.publicJwk] : [] };
  }

  // Streams ---------------------------------------------------------------------------------

  private rules = () => ({ allowHttpReceivers: this.setting('SSF_ALLOW_HTTP_RECEIVERS') });

  private own(client: SsfClient, streamId: string): StreamRecord {
    const stream = this.streams.get(streamId);
    if (stream?.client_id !== client.client_id) throw notFound(streamId);
    return stream;
  }

  async createStream(client: SsfClient, request: StreamRequest) {
    const stream: StreamRecord = {
      stream_id: randomUUID(),
      client_id: client.client_id,
      aud: client.audience ?? client.client_id,
      ...checkedSettings(request, this.rules()),
      status: 'enabled',
      created_at: Date.now(),
    };
    await this.store.save(stream);
    await this.remember(stream);
    this.logger.log(`stream ${stream.stream_id} created for ${client.client_id}`);
    return streamConfiguration(stream, this.issuer);
  }

  readStream(client: SsfClient, streamId: string) {
    return streamConfiguration(this.own(client, streamId), this.issuer);
  }

  listStreams(client: SsfClient) {
    return [...this.streams.values()]
      .filter((stream) => stream.client_id === client.client_id)
      .sort((a, b) => a.created_at - b.created_at)
      .map((stream) => streamConfiguration(stream, this.issuer));
  }

  /** PATCH merges the properties given; PUT replaces every receiver-supplied one. */
  async changeStream(
    client: SsfClient,
    request: StreamRequest & { stream_id: string },
    how: 'update' | 'replace',
  ) {
    const stream = this.own(client, request.stream_id);
    const merged: ReceiverSettings =
      how === 'replace'
        ? request
        : {
            events_requested: request.events_requested ?? stream.events_requested,
            delivery: request.delivery ?? stream.delivery,
            description: request.description ?? stream.description,
          };
    const changed: StreamRecord = { ...stream, ...checkedSettings(merged, this.rules()) };
    if (merged.description === undefined) delete changed.description;
    await this.store.save(changed);
    await this.remember(changed);
    return streamConfiguration(changed, this.issuer);
  }

  async deleteStream(client: SsfClient, streamId: string): Promise<void> {
    this.own(client, streamId);
    this.streams.delete(streamId);
    this.subjects.delete(streamId);
    await this.workers.get(streamId)?.stop();
    this.workers.delete(streamId);
    await this.store.delete(streamId);
    this.wake(streamId);
    this.logger.log(`stream ${streamId} deleted by ${client.client_id}`);
  }

  // Status, subjects, verification ------------------------------------------------------------

  readStatus(client: SsfClient, streamId: string) {
    const { status, reason } = this.own(client, streamId);
    return { stream_id: streamId, status, ...(reason !== undefined && { reason }) };
  }

  /** Paused holds the SETs and delivers them on resume; disabled drops them (and the queue). */
  async changeStatus(client: SsfClient, streamId: string, status: StreamStatus, reason?: string) {
    const stream = this.own(client, streamId);
    const changed: StreamRecord = { ...stream, status, reason };
    if (reason === undefined) delete changed.reason;
    if (status === 'disabled' || stream.status === 'disabled')
      await this.store.clearQueue(streamId);
    await this.store.save(changed);
    await this.remember(changed);
    this.wake(streamId);
    return this.readStatus(client, streamId);
  }

  async changeSubject(
    client: SsfClient,
    request: z.infer<typeof subjectRequest>,
    added: boolean,
  ): Promise<void> {
    this.own(client, request.stream_id);
    const field = subjectKey(request.subject);
    await this.store.setSubject(request.stream_id, field, added);
    const marks = this.subjects.get(request.stream_id) ?? new Map<string, string>();
    marks.set(field, added ? '1' : '0');
    this.subjects.set(request.stream_id, marks);
  }

  async verify(client: SsfClient, streamId: string, state: string | undefined): Promise<void> {
    const stream = this.own(client, streamId);
    if (stream.status === 'disabled')
      throw new SsfError(409, 'stream_disabled', 'the stream is disabled: enable it first');
    const jti = randomUUID();
    const claims = buildVerificationSet(streamId, state, {
      issuer: this.issuer,
      audience: stream.aud,
      jti,
    });
    const set = this.signer().sign(claims);
    await this.store.enqueue([{ streamId, entry: { jti, user: null, set, topicAt: 0 } }]);
    this.metrics.queued.inc({ event: 'verification' });
    this.wake(streamId);
  }

  // Delivery ------------------------------------------------------------------------------------

  /** RFC 8936: acknowledges, then returns the oldest SETs not yet acknowledged. */
  async poll(client: SsfClient, streamId: string, request: z.infer<typeof pollRequest>) {
    const stream = this.own(client, streamId);
    if (stream.delivery.method !== DELIVERY_POLL)
      throw new SsfError(400, 'invalid_request', 'this stream is delivered by push, not poll');
    const acked = await this.store.remove(streamId, request.ack ?? []);
    this.metrics.polled.inc({ outcome: 'ack' }, acked);
    const errors = Object.entries(request.setErrs ?? {});
    if (errors.length > 0) {
      this.metrics.polled.inc(
        { outcome: 'error' },
        await this.store.remove(
          streamId,
          errors.map(([jti]) => jti),
        ),
      );
      for (const [jti, { err, description }] of errors)
        this.logger.warn(
          `stream ${streamId}: receiver reports SET ${jti}: ${err} ${description ?? ''}`,
        );
    }
    const maxEvents = request.maxEvents ?? 100;
    if (maxEvents === 0) return { sets: {}, moreAvailable: (await this.store.depth(streamId)) > 0 };
    let head = stream.status === 'enabled' ? await this.store.head(streamId, maxEvents) : [];
    if (head.length === 0 && request.returnImmediately !== true) {
      await this.waitForSets(streamId, this.setting('SSF_POLL_MAX_WAIT_MS'));
      const now = this.streams.get(streamId);
      head = now?.status === 'enabled' ? await this.store.head(streamId, maxEvents) : [];
    }
    const depth = await this.store.depth(streamId);
    return {
      sets: Object.fromEntries(head.map((entry) => [entry.jti, entry.set])),
      moreAvailable: depth > head.length,
    };
  }

  private waitForSets(streamId: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const waiters = this.pollWaiters.get(streamId) ?? new Set<() => void>();
      this.pollWaiters.set(streamId, waiters);
      const done = () => {
        clearTimeout(timer);
        waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      waiters.add(done);
    });
  }

  private wake(streamId: string): void {
    this.workers.get(streamId)?.wake();
    for (const wake of this.pollWaiters.get(streamId) ?? []) wake();
  }

  /**
   * The SETs of one revocation: one per stream that wants it and is not disabled. The claims
   * are built (and checked) once; each stream's differ only in `aud` and `jti`.
   */
  private setsFor(event: RevocationEvent, topicAt: number): Outgoing[] {
    const { subject } = event.events[SESSION_REVOKED];
    const outgoing: Outgoing[] = [];
    let claims: SessionRevokedSet | undefined;
    for (const stream of this.streams.values()) {
      if (stream.status === 'disabled' || !delivers(stream, SESSION_REVOKED)) continue;
      if (!this.wantsSubject(stream.stream_id, subject.user.id, subject.session?.id)) continue;
      const jti = randomUUID();
      claims ??= buildSessionRevokedSet(event, { issuer: this.issuer, audience: stream.aud, jti });
      const set = this.signer().sign({ ...claims, aud: stream.aud, jti });
      outgoing.push({
        streamId: stream.stream_id,
        entry: { jti, user: subject.user.id, set, topicAt },
      });
    }
    return outgoing;
  }

  /**
   * SSF_DEFAULT_SUBJECTS=ALL: every subject unless removed; NONE: only subjects added. A
   * session's own mark wins over its user's.
   */
  private wantsSubject(streamId: string, userId: string, sessionId: string | undefined): boolean {
    const marks = this.subjects.get(streamId);
    const mark =
      (sessionId !== undefined ? marks?.get(`session:${sessionId}`) : undefined) ??
      marks?.get(`user:${userId}`);
    if (mark !== undefined) return mark === '1';
    return this.setting('SSF_DEFAULT_SUBJECTS') === 'ALL';
  }

  private signer(): SigningKey {
    if (!this.key) throw new SsfError(409, 'not_ready', 'the signing key is not loaded yet');
    return this.key;
  }

  /** Mirrors a stream in memory, and starts or stops its push worker to match it. */
  private async remember(stream: StreamRecord): Promise<void> {
    this.streams.set(stream.stream_id, stream);
    if (!this.subjects.has(stream.stream_id))
      this.subjects.set(stream.stream_id, await this.store.subjects(stream.stream_id));
    const worker = this.workers.get(stream.stream_id);
    const target =
      stream.delivery.method === DELIVERY_PUSH ? stream.delivery.endpoint_url : undefined;
    if (
      worker &&
      worker.target === target &&
      worker.authorization === stream.delivery.authorization_header
    )
      return;
    if (worker) {
      this.workers.delete(stream.stream_id);
      await worker.stop();
    }
    if (target === undefined) return;
    const streamId = stream.stream_id;
    this.workers.set(
      streamId,
      new PushWorker({
        streamId,
        target,
        authorization: stream.delivery.authorization_header,
        store: this.store,
        client: new PushClient(
          new URL(target),
          this.setting('SSF_PUSH_TIMEOUT_MS'),
          this.setting('SSF_PUSH_CONCURRENCY'),
          stream.delivery.authorization_header,
        ),
        metrics: this.metrics,
        logger: this.logger,
        backoff: {
          initialMs: this.setting('SSF_PUSH_BACKOFF_INITIAL_MS'),
          maxMs: this.setting('SSF_PUSH_MAX_BACKOFF_MS'),
        },
        concurrency: this.setting('SSF_PUSH_CONCURRENCY'),
        active: () => this.streams.get(streamId)?.status === 'enabled',
      }),
    );
  }

  get streamCount(): number {
    return this.streams.size;
  }

  private async queueDepths(): Promise<Map<string, number>> {
    const depths = new Map<string, number>();
    for (const id of this.streams.keys()) depths.set(id, await this.store.depth(id));
    return depths;
  }
}

/** `/health/ready`: the signing key loaded, the consumer group joined. */
@Injectable()
export class TransmitterReadiness implements ReadinessCheck {
  readonly name = 'transmitter';
  constructor(private readonly transmitter: Transmitter) {}

  check(): Promise<Record<string, unknown>> {
    if (!this.transmitter.ready)
      return Promise.reject(new Error('signing key or consumer group not ready yet'));
    return Promise.resolve({ streams: this.transmitter.streamCount });
  }
}
