import { Test } from '@nestjs/testing';
import { buildRevocationEvent } from '@app/contracts';
import { METRICS_REGISTRY } from '@app/observability';
import { eventually } from '@app/testing';
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import type { OutboxEntry } from '../outbox/outbox-entry';
import { OutboxStore } from '../outbox/outbox.store';
import { PublisherMetrics } from '../publisher.metrics';
import { OutboxRelay } from './outbox-relay.service';
import { REVOCATION_SINK, type OutgoingMessage, type RevocationSink } from './revocation-sink';
import { outboxSettings, type OutboxSettings } from '../publisher.settings';

// The relay's rules with its collaborators replaced: acknowledge only after the broker did,
// never half a batch, retry without reordering, leave work pending when stopped mid-outage.

const settings: OutboxSettings = {
  layout: { prefix: 'test:', shards: 1 },
  instanceId: undefined,
  batch: 100,
  maxBytes: 1_024 * 1_024,
  blockMs: 5,
  lingerMs: 0,
  leaseMs: 3_000,
  retryInitialMs: 1,
  retryMaxMs: 2,
};

function entryFor(n: number): OutboxEntry {
  const event = buildRevocationEvent(
    {
      issuer: 'i',
      userId: 'alice',
      sessionId: `s${n}`,
      initiatingEntity: 'user',
      reason: 'user_logout',
      at: n,
    },
    `jti-${n}`,
  );
  return {
    shard: 0,
    stream: 'outbox',
    id: `${n}-0`,
    fields: { key: 'alice', event: JSON.stringify(event) },
  };
}

class FakeOutbox {
  queue: OutboxEntry[] = [];
  acknowledged: string[][] = [];
  lease = jest.fn(() => Promise.resolve('acquired'));
  release = jest.fn(() => Promise.resolve());
  ensureGroups = jest.fn(() => Promise.resolve());
  claimPending = jest.fn(() => Promise.resolve({ next: '0-0', entries: [] as OutboxEntry[] }));
  forgetIdleConsumers = jest.fn(() => Promise.resolve());
  /** Like XREADGROUP BLOCK: with nothing to read, it waits before answering. */
  async readNew(_shards: number[], count: number, blockMs: number): Promise<OutboxEntry[]> {
    if (this.queue.length === 0) await sleep(blockMs);
    return this.queue.splice(0, count);
  }
  acknowledge(entries: OutboxEntry[]): Promise<void> {
    this.acknowledged.push(entries.map((e) => e.id));
    return Promise.resolve();
  }
  backlog() {
    return Promise.resolve({ length: this.queue.length, oldestAgeMs: 0 });
  }
}

class FakeSink implements RevocationSink {
  published: string[] = [];
  parked: string[] = [];
  requests = 0;
  failuresLeft = 0;
  /** Like a broker whose topic takes at most this many messages per request. */
  maxMessages = Infinity;
  publish(events: OutgoingMessage[], deadLetters: OutgoingMessage[]): Promise<void> {
    this.requests += 1;
    if (this.failuresLeft > 0) {
      this.failuresLeft -= 1;
      return Promise.reject(new Error('broker unreachable'));
    }
    if (events.length > this.maxMessages) return Promise.reject(new Error('message too large'));
    this.published.push(...events.map((e) => (JSON.parse(e.value) as { jti: string }).jti));
    this.parked.push(...deadLetters.map((e) => e.headers['dlq-reason'] ?? ''));
    return Promise.resolve();
  }
  refusesForGood(error: unknown): boolean {
    return (error as Error).message === 'message too large';
  }
}

async function relayWith(outbox: FakeOutbox, sink: FakeSink) {
  const moduleRef = await Test.createTestingModule({
    providers: [
      OutboxRelay,
      PublisherMetrics,
      { provide: OutboxStore, useValue: outbox },
      { provide: REVOCATION_SINK, useValue: sink },
      { provide: METRICS_REGISTRY, useValue: new Registry() },
      { provide: outboxSettings.KEY, useValue: settings },
    ],
  }).compile();
  return moduleRef;
}

describe('OutboxRelay', () => {
  it('publishes entries in order and acknowledges each batch after the broker did', async () => {
    const outbox = new FakeOutbox();
    const sink = new FakeSink();
    outbox.queue.push(...[1, 2, 3].map(entryFor));
    const moduleRef = await relayWith(outbox, sink);
    await moduleRef.init();
    await eventually('three events relayed', () =>
      outbox.acknowledged.flat().length === 3 ? true : undefined,
    );
    await moduleRef.close();

    expect(sink.published).toEqual(['jti-1', 'jti-2', 'jti-3']);
    expect(outbox.acknowledged).toEqual([['1-0', '2-0', '3-0']]);
    expect(outbox.release).toHaveBeenCalledWith(0);
  });

  it('retries a refused batch whole, without acknowledging it in between', async () => {
    const outbox = new FakeOutbox();
    const sink = new FakeSink();
    sink.failuresLeft = 3;
    outbox.queue.push(...[1, 2].map(entryFor));
    const moduleRef = await relayWith(outbox, sink);
    await moduleRef.init();
    await eventually('the batch relayed', () =>
      outbox.acknowledged.length === 1 ? true : undefined,
    );
    outbox.queue.push(entryFor(3));
    await eventually('the next one too', () =>
      outbox.acknowledged.length === 2 ? true : undefined,
    );
    await moduleRef.close();

    expect(sink.published).toEqual(['jti-1', 'jti-2', 'jti-3']);
    expect(outbox.acknowledged).toEqual([['1-0', '2-0'], ['3-0']]);
    const metrics = await moduleRef
      .get<Registry>(METRICS_REGISTRY)
      .getSingleMetricAsString('publisher_publish_retries_total');
    expect(metrics).toMatch(/ 3$/m);
  });

  it('leaves the batch pending, unacknowledged, when stopped while Kafka is down', async () => {
    const outbox = new FakeOutbox();
    const sink = new FakeSink();
    sink.failuresLeft = Number.MAX_SAFE_INTEGER;
    outbox.queue.push(entryFor(1));
    const moduleRef = await relayWith(outbox, sink);
    await moduleRef.init();
    await eventually('a few failed attempts', () =>
      sink.failuresLeft < Number.MAX_SAFE_INTEGER - 2 ? true : undefined,
    );
    await moduleRef.close();

    expect(outbox.acknowledged).toEqual([]);
    expect(sink.published).toEqual([]);
  });

  it('claims what a previous holder left pending before reading new entries', async () => {
    const outbox = new FakeOutbox();
    const sink = new FakeSink();
    outbox.claimPending.mockResolvedValueOnce({ next: '0-0', entries: [entryFor(1)] });
    outbox.queue.push(entryFor(2));
    const moduleRef = await relayWith(outbox, sink);
    await moduleRef.init();
    await eventually('both relayed', () =>
      outbox.acknowledged.flat().length === 2 ? true : undefined,
    );
    await moduleRef.close();

    expect(sink.published).toEqual(['jti-1', 'jti-2']);
  });

  it('sends a batch as several requests when it would exceed the byte bound', async () => {
    const outbox = new FakeOutbox();
    const sink = new FakeSink();
    settings.maxBytes = 1_024; // an event with its headers is ~400 bytes
    try {
      outbox.queue.push(...[1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map(entryFor));
      const moduleRef = await relayWith(outbox, sink);
      await moduleRef.init();
      await eventually('ten events relayed', () =>
        outbox.acknowledged.flat().length === 10 ? true : undefined,
      );
      await moduleRef.close();
      expect(sink.published).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((n) => `jti-${n}`));
      expect(sink.requests).toBeGreaterThanOrEqual(4);
    } finally {
      settings.maxBytes = 1_024 * 1_024;
    }
  });

  it('halves a batch the broker refuses for good, in order, and relays all of it', async () => {
    const outbox = new FakeOutbox();
    const sink = new FakeSink();
    sink.maxMessages = 2;
    outbox.queue.push(...[1, 2, 3, 4, 5, 6, 7].map(entryFor));
    const moduleRef = await relayWith(outbox, sink);
    await moduleRef.init();
    await eventually('seven events relayed', () =>
      outbox.acknowledged.flat().length === 7 ? true : undefined,
    );
    await moduleRef.close();
    expect(sink.published).toEqual([1, 2, 3, 4, 5, 6, 7].map((n) => `jti-${n}`));
    expect(sink.parked).toEqual([]);
  });

  it('parks the one message the broker refuses for good, and goes on', async () => {
    const outbox = new FakeOutbox();
    const sink = new FakeSink();
    sink.maxMessages = 0; // no event passes: each ends up alone, and parked
    outbox.queue.push(...[1, 2].map(entryFor));
    const moduleRef = await relayWith(outbox, sink);
    await moduleRef.init();
    await eventually('both parked', () =>
      outbox.acknowledged.flat().length === 2 ? true : undefined,
    );
    await moduleRef.close();
    expect(sink.parked).toEqual([
      'refused by the broker: message too large',
      'refused by the broker: message too large',
    ]);
  });

  it('vouches for the start of a read that left nothing behind, once its batch is published', async () => {
    const outbox = new FakeOutbox();
    const sink = new FakeSink();
    const moduleRef = await relayWith(outbox, sink);
    const relay = moduleRef.get(OutboxRelay);
    expect(relay.vouchedAt()).toBeUndefined();
    const before = Date.now();
    await moduleRef.init();
    await eventually('a vouch', () => relay.vouchedAt());
    expect(relay.vouchedAt()).toBeGreaterThanOrEqual(before);
    sink.failuresLeft = Number.MAX_SAFE_INTEGER; // Kafka down: the batch cannot be published
    outbox.queue.push(entryFor(1));
    await eventually('the batch to be tried', () => (sink.requests > 1 ? true : undefined));
    const stuck = relay.vouchedAt()!;
    await sleep(50);
    expect(relay.vouchedAt()).toBe(stuck); // no newer instant while the batch is not out
    sink.failuresLeft = 0;
    await eventually('a newer vouch once it is out', () =>
      relay.vouchedAt()! > stuck ? true : undefined,
    );
    await moduleRef.close();
  });
});
