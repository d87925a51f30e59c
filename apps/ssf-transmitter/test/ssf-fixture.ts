// What the SSF transmitter's integration specs run against: the run's real Kafka (a topic of
// the spec's own, revocations produced onto it as the publisher does) and Redis (a key prefix
// of its own), the transmitter as a process, and test receivers: small HTTP servers that keep
// every SET pushed to them, verified against the transmitter's JWKS.
import {
  buildRevocationEvent,
  encodeRevocation,
  SET_TYP,
  type RevocationEvent,
} from '@app/contracts';
import { closeServer, testInfra, uniqueName } from '@app/testing';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { freePort } from '../../../scripts/lib/process.ts';
import { startApp, type AppHandle } from '../../../scripts/system.ts';

export const CLIENTS = [
  {
    client_id: 'receiver-a',
    token: 'token-of-receiver-a-0123456789',
    audience: 'https://a.example',
  },
  {
    client_id: 'receiver-b',
    token: 'token-of-receiver-b-0123456789',
    audience: 'https://b.example',
  },
] as const;

export const auth = (client: (typeof CLIENTS)[number] = CLIENTS[0]) => ({
  authorization: `Bearer ${client.token}`,
});

/** One SET as a receiver got it: its claims (signature, typ, iss and aud checked), when. */
export interface Received {
  claims: JWTPayload & Record<string, unknown>;
  at: number;
}

/**
 * A push receiver (RFC 8935): answers 202 to each SET whose signature verifies against the
 * transmitter's JWKS with `typ: secevent+jwt`, its issuer and this receiver's audience (400
 * otherwise, and keeps the problem); `mode` makes it refuse connections or answer 503.
 */
export class TestReceiver {
  readonly received: Received[] = [];
  readonly problems: string[] = [];
  readonly authorizations: (string | undefined)[] = [];
  mode: 'up' | 'unavailable' = 'up';
  private server: Server | undefined;

  private constructor(
    readonly port: number,
    private readonly verify: (jws: string) => Promise<JWTPayload>,
  ) {}

  static async start(issuer: string, jwksUri: string, audience: string): Promise<TestReceiver> {
    const jwks = createRemoteJWKSet(new URL(jwksUri));
    const receiver = new TestReceiver(await freePort(), async (jws) => {
      const { payload, protectedHeader } = await jwtVerify(jws, jwks, {
        issuer,
        audience,
        typ: SET_TYP,
      });
      if (protectedHeader.typ !== SET_TYP) throw new Error(`typ ${String(protectedHeader.typ)}`);
      return payload;
    });
    await receiver.listen();
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/events`;
  }

  async listen(): Promise<void> {
    const server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        if (this.mode === 'unavailable') return void response.writeHead(503).end();
        this.authorizations.push(request.headers.authorization);
        const body = Buffer.concat(chunks).toString('utf8');
        const at = Date.now();
        if (request.headers['content-type'] !== 'application/secevent+jwt') {
          this.problems.push(`content-type ${String(request.headers['content-type'])}`);
          return void response.writeHead(400).end();
        }
        this.verify(body).then(
          (claims) => {
            this.received.push({ claims: claims, at });
            response.writeHead(202).end();
          },
          (error: unknown) => {
            this.problems.push(String(error));
            response
              .writeHead(400, { 'content-type': 'application/json' })
              .end(JSON.stringify({ err: 'invalid_request', description: String(error) }));
          },
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.server = server;
  }

  /** Connections refused from now on (until `listen`). */
  async close(): Promise<void> {
    await closeServer(this.server);
    this.server = undefined;
  }

  /** The `txn` (the topic event's jti) of every session-revoked SET, in arrival order. */
  txns(): string[] {
    return this.received.flatMap(({ claims }) =>
      typeof claims.txn === 'string' ? [claims.txn] : [],
    );
  }
}

/** The transmitter as a process, on a topic and key prefix of the spec's own. */
export class SsfFixture {
  readonly topic = uniqueName('ssf-revocations');
  readonly prefix = `${uniqueName('ssf')}:`;
  readonly group = uniqueName('ssf-group');
  readonly brokers = testInfra().kafkaBrokers;
  readonly kafka = new Kafka({
    clientId: uniqueName('ssf-test'),
    brokers: this.brokers,
    logLevel: logLevel.NOTHING,
  });
  private producer: Producer | undefined;
  transmitter: AppHandle | undefined;
  port = 0;
  private readonly logDir = join(process.env.TEST_DATA_DIR ?? '/tmp', 'logs');
  private starts = 0;

  constructor(private readonly env: Record<string, string> = {}) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    await this.createTopic();
    await this.startTransmitter();
  }

  /** The topic (3 partitions) and a producer on it, as the publisher would make them. */
  async createTopic(): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    await admin.createTopics({
      topics: [{ topic: this.topic, numPartitions: 3 }],
      waitForLeaders: true,
    });
    await admin.disconnect();
    this.producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await this.producer.connect();
  }

  async startTransmitter(): Promise<void> {
    if (this.port === 0) this.port = await freePort();
    this.starts += 1;
    this.transmitter = await startApp({
      name: 'ssf-transmitter',
      label: `ssf-${this.starts}`,
      port: this.port,
      logFile: join(this.logDir, `${this.prefix.slice(0, -1)}-${this.starts}.log`),
      env: {
        INSTANCE_ID: 'ssf-test',
        KAFKA_BROKERS: this.brokers.join(','),
        REDIS_URL: testInfra().redisUrl,
        REVOCATION_TOPIC: this.topic,
        SSF_KEY_PREFIX: this.prefix,
        SSF_CONSUMER_GROUP: this.group,
        SSF_ISSUER: `http://127.0.0.1:${this.port}`,
        SSF_CLIENTS: JSON.stringify(CLIENTS),
        SSF_PUSH_BACKOFF_INITIAL_MS: '100',
        SSF_PUSH_MAX_BACKOFF_MS: '1000',
        SSF_PUSH_TIMEOUT_MS: '2000',
        SSF_POLL_MAX_WAIT_MS: '2000',
        ...this.env,
      },
    });
  }

  async stopTransmitter({ crash = false } = {}): Promise<void> {
    if (crash) await this.transmitter?.kill();
    else await this.transmitter?.stop(10_000);
    this.transmitter = undefined;
  }

  /** Puts revocations on the topic as the publisher does (key = user id). */
  async produce(events: RevocationEvent[]): Promise<void> {
    await this.producer?.send({
      topic: this.topic,
      acks: -1,
      messages: events.map(encodeRevocation),
    });
  }

  async stop(): Promise<void> {
    await this.stopTransmitter();
    await this.producer?.disconnect();
  }

  /** A management call; answers status and JSON body (or null). */
  async call(
    method: string,
    path: string,
    { body, headers = auth() }: { body?: unknown; headers?: Record<string, string> } = {},
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    const response = await fetch(`${this.url}${path}`, {
      method,
      headers: { ...headers, ...(body !== undefined && { 'content-type': 'application/json' }) },
      ...(body !== undefined && { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    const text = await response.text();
    return {
      status: response.status,
      body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
    };
  }
}

let sequence = 0;
/** A revocation of one session (or every session when `sessionId` is null) of `userId`. */
export function revocation(
  userId: string,
  sessionId: string | null = `s-${++sequence}`,
): RevocationEvent {
  return buildRevocationEvent({
    issuer: 'https://sessions.example',
    userId,
    ...(sessionId !== null && { sessionId }),
    initiatingEntity: 'user',
    reason: sessionId === null ? 'logout_all' : 'user_logout',
    at: Date.now(),
  });
}
