import { deadLetterTopic, DLQ_REASON_HEADER, DLQ_SOURCE_HEADER, OutboxField } from '@app/contracts';
import { eventually, TopicRecorder } from '@app/testing';
import { inOrderPerUser, PublisherFixture, revocations } from './publisher-fixture';

// The publisher as a real process, against the run's real Kafka broker and Redis.

describe('revocation publisher: outbox to topic', () => {
  const fixture = new PublisherFixture();
  let recorder: TopicRecorder;

  beforeAll(async () => {
    await fixture.startPublisher('publisher-1');
    recorder = await TopicRecorder.start(fixture.brokers, fixture.topic);
  });

  afterAll(async () => {
    await recorder.stop();
    await fixture.close();
  });

  it('relays 1,000 outbox entries as exactly 1,000 distinct events, each user in order', async () => {
    const events = revocations(1_000, 37);
    await fixture.write(events);

    await eventually('1,000 events on the topic', () =>
      recorder.revocations.length >= 1_000 ? true : undefined,
    );
    expect(recorder.revocations).toHaveLength(1_000);
    expect(recorder.distinctJtis()).toEqual(new Set(events.map((e) => e.jti)));
    expect(inOrderPerUser(recorder.revocations)).toBe(true);
    // Keyed by user: one user's events all sit on one partition.
    const partitionsOfUser = new Map<string, Set<number>>();
    for (const r of recorder.revocations)
      partitionsOfUser.set(r.key, (partitionsOfUser.get(r.key) ?? new Set()).add(r.partition));
    expect([...partitionsOfUser.values()].every((partitions) => partitions.size === 1)).toBe(true);
    // Relayed entries are acknowledged and trimmed.
    await eventually('the outbox to drain', async () =>
      (await fixture.outboxLength()) === 0 ? true : undefined,
    );
  });

  it('parks a malformed entry in the dead-letter topic, reports it, and goes on', async () => {
    const dlq = await TopicRecorder.start(fixture.brokers, deadLetterTopic(fixture.topic));
    try {
      const [before, after] = revocations(2, 1).map((e) => ({ ...e, jti: `${e.jti}-x` }));
      await fixture.write([before!]);
      await fixture.writeRaw('user-0', {
        [OutboxField.Key]: 'user-0',
        [OutboxField.Event]: '{"jti": 42}',
      });
      await fixture.writeRaw('user-0', { unexpected: 'field' });
      await fixture.write([after!]);

      await eventually('both valid events', () =>
        [before!, after!].every((e) => recorder.distinctJtis().has(e.jti)) ? true : undefined,
      );
      await eventually('two dead letters', () => (dlq.invalid.length >= 2 ? true : undefined));
      expect(dlq.invalid.map((letter) => letter.headers[DLQ_REASON_HEADER])).toEqual([
        expect.stringMatching(/^event jti: /),
        'outbox entry has no "event" field',
      ]);
      for (const letter of dlq.invalid)
        expect(letter.headers[DLQ_SOURCE_HEADER]).toMatch(/^redis:.+\/\d+-\d+$/);
      const metrics = await (await fetch(`${fixture.publishers[0]!.url}/metrics`)).text();
      expect(metrics).toMatch(/^publisher_dead_letters_total\{[^}]*\} 2$/m);
    } finally {
      await dlq.stop();
    }
  });

  it('heartbeats every partition, no faster than the configured interval, vouching for the past', async () => {
    const since = Date.now();
    await eventually('three heartbeats on each of the 6 partitions', () => {
      const fresh = recorder.heartbeats.filter((h) => h.timestamp >= since);
      const perPartition = new Set(fresh.map((h) => h.partition));
      return perPartition.size === 6 && fresh.length >= 18 ? true : undefined;
    });
    for (let partition = 0; partition < 6; partition += 1) {
      const beats = recorder.heartbeats.filter((h) => h.partition === partition);
      expect(
        beats.every(
          ({ heartbeat }) =>
            heartbeat.interval_ms === 200 &&
            heartbeat.publisher_id === 'publisher-1' &&
            'partitions' in heartbeat &&
            heartbeat.partitions === 6,
        ),
      ).toBe(true);
      // A heartbeat vouches for an instant before it was sent, never after.
      expect(beats.every(({ heartbeat, timestamp }) => heartbeat.sent_at <= timestamp)).toBe(true);
      // No faster than the interval: over the whole run, and no two almost at once (the time a
      // send takes varies, so single gaps do around the interval).
      const span = beats.at(-1)!.timestamp - beats[0]!.timestamp;
      expect(beats.length - 1).toBeLessThanOrEqual(span / 200 + 1);
      const gaps = beats.slice(1).map((b, i) => b.timestamp - beats[i]!.timestamp);
      expect(Math.min(...gaps)).toBeGreaterThanOrEqual(100);
    }
  });
});
