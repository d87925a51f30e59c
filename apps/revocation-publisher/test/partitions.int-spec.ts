import { Partitioners, type PartitionMetadata } from 'kafkajs';
import { createRevocationGuard, type RevocationGuard } from '@app/revocation-guard';
import { eventually, startOidcIssuer, TopicRecorder, type TestOidcIssuer } from '@app/testing';
import { createKafka } from '@app/kafka';
import { PublisherFixture, revocations } from './publisher-fixture';

// Partitions added to the topic of a running system: the publisher heartbeats them and routes
// revocations to them, and a running guard reads them: its freshness covers them, and a
// revocation on a new partition is enforced.

/** The partition Kafka's default (murmur2) partitioner picks for `key` among `count`. */
function partitionOf(key: string, count: number): number {
  const partitionMetadata = Array.from(
    { length: count },
    (_, partitionId) => ({ partitionId, leader: 0 }) as PartitionMetadata,
  );
  return Partitioners.DefaultPartitioner()({
    topic: 't',
    partitionMetadata,
    message: { key, value: null },
  });
}

describe('revocation topic: partitions added while everything runs', () => {
  const fixture = new PublisherFixture();
  let issuer: TestOidcIssuer; // only its JWKS: the guard loads keys before it is ready
  let guard: RevocationGuard;
  let recorder: TopicRecorder;

  beforeAll(async () => {
    await fixture.startPublisher('publisher-p', { TOPIC_PARTITIONS: '2' });
    issuer = await startOidcIssuer();
    guard = createRevocationGuard({
      serviceName: 'partitions-test',
      brokers: fixture.brokers,
      topic: fixture.topic,
      jwksUrl: issuer.jwksUri,
      issuer: issuer.issuer,
      audience: issuer.audience,
      freshnessBoundMs: 5_000,
      logger: { log: () => undefined, warn: () => undefined, error: () => undefined },
    });
    await guard.start();
    recorder = await TopicRecorder.start(fixture.brokers, fixture.topic);
  });

  afterAll(async () => {
    await Promise.all([guard.stop(), recorder.stop()]);
    await issuer.stop();
    await fixture.close();
  });

  it('2 → 6 partitions: heartbeats and revocations reach the new ones, and the guard applies them', async () => {
    await eventually('the guard fresh', () => (guard.health().freshness.fresh ? true : undefined));
    const admin = createKafka({ brokers: fixture.brokers, clientId: 'partitions-test' }).admin();
    await admin.connect();
    try {
      await admin.createPartitions({ topicPartitions: [{ topic: fixture.topic, count: 6 }] });
    } finally {
      await admin.disconnect();
    }

    await eventually(
      'heartbeats on every new partition, announcing 6',
      () =>
        [2, 3, 4, 5].every((partition) =>
          recorder.heartbeats.some(
            (h) =>
              h.partition === partition &&
              'partitions' in h.heartbeat &&
              h.heartbeat.partitions === 6,
          ),
        )
          ? true
          : undefined,
      { timeoutMs: 30_000 },
    );

    // Users routed to the new partitions now.
    const events = revocations(200, 200).filter((event) => {
      const user = Object.values(event.events)[0]!.subject.user.id;
      return partitionOf(user, 6) >= 2;
    });
    expect(events.length).toBeGreaterThan(20);
    await fixture.write(events);
    await eventually('every event on the topic', () =>
      events.every((e) => recorder.distinctJtis().has(e.jti)) ? true : undefined,
    );
    for (const received of recorder.revocations.filter((r) =>
      events.some((e) => e.jti === r.event.jti),
    ))
      expect({ user: received.key, partition: received.partition }).toEqual({
        user: received.key,
        partition: partitionOf(received.key, 6),
      });

    // The running guard applied every one of them and watches all six partitions.
    await eventually('the guard to revoke every session', () =>
      events.every((event) => {
        const revoked = Object.values(event.events)[0]!;
        return (
          guard.store.check({
            sub: revoked.subject.user.id,
            sid: revoked.subject.session!.id,
            iat: Math.floor(Date.now() / 1000),
          }) === 'session_revoked'
        );
      })
        ? true
        : undefined,
    );
    await eventually('the guard fresh on all six partitions', () => {
      const { freshness } = guard.health();
      return freshness.fresh && freshness.silentPartitions.length === 0 ? freshness : undefined;
    });
    expect(guard.health().freshness.partitions).toEqual([0, 1, 2, 3, 4, 5]);
  });
});
