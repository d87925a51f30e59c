import { PartitionFreshness } from './freshness';

const T0 = Date.UTC(2026, 10, 29, 10, 0, 0);
const BOUND = 10_000;

function setup(partitions = [0, 1, 2]) {
  let now = T0;
  const freshness = new PartitionFreshness({ boundMs: BOUND, now: () => now });
  freshness.track(partitions);
  return { freshness, advance: (ms: number) => (now += ms), now: () => now };
}

describe('PartitionFreshness', () => {
  it('is stale until every partition has had a heartbeat', () => {
    const { freshness, now } = setup();
    expect(freshness.isFresh()).toBe(false);
    freshness.record(0, now());
    freshness.record(1, now());
    expect(freshness.isFresh()).toBe(false);
    expect(freshness.report()).toMatchObject({
      fresh: false,
      stalestAgeMs: Infinity,
      stalestPartition: 2,
      silentPartitions: [2],
    });
    freshness.record(2, now());
    expect(freshness.isFresh()).toBe(true);
  });

  it('turns stale when any one partition goes quiet for longer than the bound', () => {
    const { freshness, advance, now } = setup();
    for (const partition of [0, 1, 2]) freshness.record(partition, now());
    advance(BOUND);
    freshness.record(0, now());
    freshness.record(2, now());
    expect(freshness.isFresh()).toBe(true); // partition 1 is exactly at the bound
    advance(1);
    expect(freshness.isFresh()).toBe(false);
    expect(freshness.report()).toMatchObject({ stalestPartition: 1, stalestAgeMs: BOUND + 1 });
    freshness.record(1, now());
    expect(freshness.isFresh()).toBe(true);
  });

  it('counts a heartbeat by when it was sent: one replayed from the log is old news', () => {
    const { freshness, now } = setup([0]);
    freshness.record(0, now() - 60_000);
    expect(freshness.isFresh()).toBe(false);
    expect(freshness.report().stalestAgeMs).toBe(60_000);
  });

  it('never believes a publisher clock running ahead: a heartbeat counts at most as now', () => {
    const { freshness, advance, now } = setup([0]);
    freshness.record(0, now() + 3_600_000);
    advance(BOUND + 1);
    expect(freshness.isFresh()).toBe(false);
  });

  it('ignores an older heartbeat arriving after a newer one', () => {
    const { freshness, advance, now } = setup([0]);
    freshness.record(0, now());
    freshness.record(0, now() - 30_000);
    advance(BOUND);
    expect(freshness.isFresh()).toBe(true);
  });

  it('tells how far the stalest partition fell behind the freshest, not how old both are', () => {
    const { freshness, advance, now } = setup();
    expect(freshness.spreadMs()).toBe(0); // none heard: nothing fell behind
    freshness.record(0, now());
    expect(freshness.spreadMs()).toBe(Infinity); // 1 and 2 never heard, 0 heard
    freshness.record(1, now());
    freshness.record(2, now());
    advance(30_000); // all ageing together (no publisher): no spread
    expect(freshness.spreadMs()).toBe(0);
    freshness.record(0, now());
    freshness.record(2, now() - 1_000);
    expect(freshness.spreadMs()).toBe(30_000); // 1 fell behind 0
  });

  it('knowing no partition is not fresh', () => {
    const { freshness } = setup([]);
    expect(freshness.isFresh()).toBe(false);
  });
});
