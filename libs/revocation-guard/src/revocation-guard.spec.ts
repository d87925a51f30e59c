import {
  buildRevocationEvent,
  encodeHeartbeat,
  encodeRevocation,
  SESSION_REVOKED,
  type Revocation,
} from '@app/contracts';
import type { ConsumerRunConfig, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import { createRevocationGuard, type RevocationGuard } from './revocation-guard';
import type { AppliedRevocation } from './view/revocation-listeners';

// The guard's listeners of applied revocations (`guard.onRevocation`), with the consumer fed
// by a stand-in for KafkaJS (one partition holding two messages when the guard starts, then
// batches the test hands over): the replay and heartbeats reach no listener, a listener that
// throws or rejects stops neither consumption nor the other listeners, unsubscribing works.

const NOW = 1_800_000_000_000;

function revocation(userId: string, sessionId?: string): Revocation {
  return {
    issuer: 'https://issuer.test',
    userId,
    ...(sessionId !== undefined && { sessionId }),
    initiatingEntity: 'admin',
    reason: 'admin_revoked',
    at: NOW - 1_000,
  };
}

const message = (offset: number, encoded: ReturnType<typeof encodeRevocation>): KafkaMessage =>
  ({
    ...encoded,
    offset: String(offset),
    timestamp: String(NOW),
    attributes: 0,
  }) as unknown as KafkaMessage;

/**
 * One partition with `history` on it at start; `deliver` hands the consumer a batch. The first
 * `runFailures` calls of `run` fail, as KafkaJS's does while the topic's metadata is not loaded.
 */
function fakeKafka(history: KafkaMessage[], { runFailures = 0 } = {}) {
  let run: ConsumerRunConfig | undefined;
  let failuresLeft = runFailures;
  const ok = () => Promise.resolve();
  const kafka = {
    admin: () => ({
      connect: ok,
      disconnect: ok,
      fetchTopicOffsets: () =>
        Promise.resolve([
          { partition: 0, offset: String(history.length), high: String(history.length), low: '0' },
        ]),
      fetchTopicOffsetsByTimestamp: () => Promise.resolve([{ partition: 0, offset: '0' }]),
    }),
    consumer: () => ({
      events: { GROUP_JOIN: 'consumer.group_join', CRASH: 'consumer.crash' },
      on: () => undefined,
      connect: ok,
      subscribe: ok,
      seek: () => undefined,
      disconnect: ok,
      run: (config: ConsumerRunConfig) => {
        if (failuresLeft > 0) {
          failuresLeft -= 1;
          return Promise.reject(new Error('Topic metadata not loaded'));
        }
        run = config;
        return Promise.resolve();
      },
    }),
    producer: () => ({ connect: ok, disconnect: ok, send: ok }),
  } as unknown as Kafka;
  const deliver = async (messages: KafkaMessage[]) => {
    if (run?.eachBatch === undefined) throw new Error('the consumer is not running');
    await run.eachBatch({
      batch: { topic: 't', partition: 0, messages },
      isRunning: () => true,
      isStale: () => false,
      heartbeat: ok,
    } as unknown as EachBatchPayload);
  };
  return { kafka, deliver, running: () => run !== undefined };
}

describe('RevocationGuard.onRevocation', () => {
  let guard: RevocationGuard;
  let fake: ReturnType<typeof fakeKafka>;
  const errors: string[] = [];

  beforeEach(async () => {
    errors.length = 0;
    fake = fakeKafka(historyAgain());
    guard = guardOver(fake.kafka, errors);
    guard.start().catch(() => undefined);
    await waitUntil(fake.running);
  });

  afterEach(() => guard.stop());

  it('tells each listener about revocations applied after the start, not the replay or heartbeats', async () => {
    const seen: AppliedRevocation[] = [];
    const checkedWithin: unknown[] = [];
    guard.onRevocation((applied) => {
      seen.push(applied);
      const sid = applied.revoked.subject.session?.id ?? 'none';
      checkedWithin.push(guard.store.check({ sub: 'u1', sid, iat: NOW / 1000 - 10 }));
    });

    await fake.deliver(historyAgain());
    expect(seen).toEqual([]);

    const event = buildRevocationEvent(revocation('u1', 's1'));
    await fake.deliver([
      message(2, encodeRevocation(event)),
      heartbeatMessage(3),
      message(4, encodeRevocation(event)),
    ]);
    const revoked = event.events[SESSION_REVOKED];
    expect(seen).toEqual([
      { event, revoked, appliedAt: NOW, changed: true },
      { event, revoked, appliedAt: NOW, changed: false },
    ]);
    // The store already held the revocation when the listener ran.
    expect(checkedWithin).toEqual(['session_revoked', 'session_revoked']);
  });

  it('applies live revocations while no one listens, and tells a listener added later in full', async () => {
    const first = buildRevocationEvent(revocation('u2', 's2'));
    await fake.deliver([message(2, encodeRevocation(first))]);
    const claims = (sid: string) => ({ sub: 'u2', sid, iat: NOW / 1000 - 10 });
    expect(guard.store.check(claims('s2'))).toBe('session_revoked');

    const seen: AppliedRevocation[] = [];
    guard.onRevocation((applied) => {
      seen.push(applied);
    });
    const everywhere = buildRevocationEvent(revocation('u2'));
    await fake.deliver([message(3, encodeRevocation(everywhere))]);
    expect(guard.store.check(claims('s3'))).toBe('user_revoked');
    expect(seen).toEqual([
      {
        event: everywhere,
        revoked: everywhere.events[SESSION_REVOKED],
        appliedAt: NOW,
        changed: true,
      },
    ]);
  });

  it('tells of the messages after the replay end even when they come in its last batch', async () => {
    const seen: string[] = [];
    guard.onRevocation((applied) => {
      seen.push(applied.revoked.subject.user.id);
    });

    // The two messages of history and a new one, fetched together.
    await fake.deliver([
      ...historyAgain(),
      message(2, encodeRevocation(buildRevocationEvent(revocation('new-user')))),
    ]);

    expect(seen).toEqual(['new-user']);
    expect(guard.health().replay).toMatchObject({ done: true, read: 2, total: 2 });
    expect(guard.store.check({ sub: 'old-user', sid: 'x', iat: NOW / 1000 - 10 })).toBe(
      'user_revoked',
    );
  });

  it('goes on when a listener throws or rejects, and stops calling one that unsubscribed', async () => {
    const calls: string[] = [];
    guard.onRevocation(() => {
      throw new Error('listener bug');
    });
    guard.onRevocation(() => Promise.reject(new Error('async listener bug')));
    const unsubscribe = guard.onRevocation((applied) => {
      calls.push(applied.revoked.subject.user.id);
    });

    await fake.deliver(historyAgain());
    await fake.deliver([message(2, encodeRevocation(buildRevocationEvent(revocation('u2'))))]);
    unsubscribe();
    await fake.deliver([message(3, encodeRevocation(buildRevocationEvent(revocation('u3'))))]);
    await new Promise((resolve) => setImmediate(resolve));

    expect(calls).toEqual(['u2']);
    // Both events were applied all the same.
    expect(guard.store.check({ sub: 'u3', sid: 'any', iat: NOW / 1000 - 10 })).toBe('user_revoked');
    expect(errors.sort()).toEqual([
      'a revocation listener failed: async listener bug',
      'a revocation listener failed: async listener bug',
      'a revocation listener failed: listener bug',
      'a revocation listener failed: listener bug',
    ]);
  });
});

const heartbeatMessage = (offset: number): KafkaMessage =>
  ({
    ...encodeHeartbeat({ publisher_id: 'p', sent_at: NOW, interval_ms: 200, partitions: 1 }, 0),
    offset: String(offset),
    timestamp: String(NOW),
    attributes: 0,
  }) as unknown as KafkaMessage;

describe('RevocationGuard start-up', () => {
  it('starts reading the topic when the consumer could not run at first (metadata not loaded yet)', async () => {
    const fake = fakeKafka(historyAgain(), { runFailures: 2 });
    const errors: string[] = [];
    const guard = guardOver(fake.kafka, errors);
    guard.start().catch((error: unknown) => errors.push(String(error)));
    try {
      await waitUntil(fake.running);
      await fake.deliver(historyAgain());
      expect(guard.store.check({ sub: 'old-user', sid: 'x', iat: NOW / 1000 - 10 })).toBe(
        'user_revoked',
      );
      expect(errors).toEqual([]);
    } finally {
      await guard.stop();
    }
  });
});

/** A guard reading `kafka`, its errors logged into `errors`. */
function guardOver(kafka: Kafka, errors: string[]): RevocationGuard {
  return createRevocationGuard({
    serviceName: 'guard-test',
    kafka,
    // Never answers: the keys do not matter to the view; start() is not awaited.
    jwksUrl: 'http://127.0.0.1:9/jwks.json',
    issuer: 'https://issuer.test',
    audience: 'apis',
    now: () => NOW,
    logger: { log: () => undefined, warn: () => undefined, error: (m) => errors.push(m) },
  });
}

/** The two messages on the partition at start: the replay. */
function historyAgain(): KafkaMessage[] {
  return [
    message(0, encodeRevocation(buildRevocationEvent(revocation('old-user', 'old-session')))),
    message(1, encodeRevocation(buildRevocationEvent(revocation('old-user')))),
  ];
}

async function waitUntil(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
}
