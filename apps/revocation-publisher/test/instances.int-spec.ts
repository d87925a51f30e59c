import { eventually, TopicRecorder } from '@app/testing';
import { PublisherFixture, revocations } from './publisher-fixture';

// Publisher replicas started alike (no INSTANCE_ID, each process 1 of its own pid namespace,
// as in containers) are still two instances: one relays, the other stands by and takes over
// when the first dies.

describe('revocation publisher replicas without an INSTANCE_ID', () => {
  const fixture = new PublisherFixture();
  let recorder: TopicRecorder;

  beforeAll(async () => {
    await fixture.startPublisher('replica-a', {}, { defaultIdentity: true });
    await fixture.startPublisher('replica-b', {}, { defaultIdentity: true });
    recorder = await TopicRecorder.start(fixture.brokers, fixture.topic);
  });

  afterAll(async () => {
    await recorder.stop();
    await fixture.close();
  });

  const ownedShards = async (url: string) => {
    const metrics = await (await fetch(`${url}/metrics`)).text();
    return Number(/^publisher_owned_shards\{[^}]*\} (\d+)$/m.exec(metrics)?.[1] ?? NaN);
  };

  it('one holds every shard, the other none; killed, its shards move to the other', async () => {
    const [a, b] = fixture.publishers as [
      (typeof fixture.publishers)[0],
      (typeof fixture.publishers)[0],
    ];
    const split = await eventually('the shards to have one owner', async () => {
      const owned = [await ownedShards(a.url), await ownedShards(b.url)];
      return owned.includes(4) && owned.includes(0) ? owned : undefined;
    });
    const [owner, standby] = split[0] === 4 ? [a, b] : [b, a];

    const events = revocations(300, 30);
    await fixture.write(events.slice(0, 150));
    await owner.kill();
    await fixture.write(events.slice(150));
    await eventually(
      'all 300 events after the takeover',
      () => (recorder.distinctJtis().size >= 300 ? true : undefined),
      { timeoutMs: 60_000 },
    );
    expect(recorder.distinctJtis()).toEqual(new Set(events.map((e) => e.jti)));
    expect(await ownedShards(standby.url)).toBe(4);
    // Two identities, as the heartbeats tell: the first owner's, then the standby's.
    await eventually('heartbeats from both', () =>
      new Set(recorder.heartbeats.map((h) => h.heartbeat.publisher_id)).size === 2
        ? true
        : undefined,
    );
  });
});
