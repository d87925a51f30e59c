import { SessionIdSet } from './session-id-set';

// The typed-array set beside a Map that does the same, through long random sequences of adds,
// lookups and expiries: growth, linear probing's deletes (moving entries back), compaction and
// shrinking are all crossed many times; ids of every kind (ASCII, non-ASCII, empty, long, ids
// that differ in one byte or only in length).

/** A small deterministic generator (mulberry32): the same sequence at every run. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The set's behaviour, with a Map (insertion order kept, as the store's was). */
class Model {
  readonly entries = new Map<string, number>();
  add(id: string, forgetAt: number): boolean {
    if (this.entries.has(id)) return false;
    this.entries.set(id, forgetAt);
    return true;
  }
  forgetExpired(now: number): number {
    let dropped = 0;
    for (const [id, forgetAt] of this.entries) {
      if (forgetAt > now) break;
      this.entries.delete(id);
      dropped += 1;
    }
    return dropped;
  }
}

describe('SessionIdSet', () => {
  const kinds = (next: () => number, n: number): string => {
    switch (n % 6) {
      case 0:
        return `s${n % 16}_${Math.floor(next() * 1e9).toString(36)}`;
      case 1:
        return `sé${n % 7}ß😀`; // non-ASCII, few distinct
      case 2:
        return 'x'.repeat(n % 300); // lengths 0..299, the empty id too
      case 3:
        return `${n % 50}`; // short, often repeated
      case 4:
        return `prefix-${n % 1000}-${'y'.repeat(n % 3)}`; // differ in length only
      default:
        return crypto.randomUUID();
    }
  };

  it('adds, finds and forgets exactly as a Map over long random sequences', () => {
    for (const seed of [1, 2, 3]) {
      const next = random(seed);
      const set = new SessionIdSet();
      const model = new Model();
      const added: string[] = [];
      /** Each step where the two differ (an expect per step costs more than the set). */
      const differences: unknown[] = [];
      const same = (step: number, what: string, got: unknown, expected: unknown) => {
        if (got !== expected) differences.push({ step, what, got, expected });
      };
      let now = 0;
      for (let step = 0; step < 40_000; step += 1) {
        const roll = next();
        if (roll < 0.6) {
          const id = kinds(next, Math.floor(next() * 100_000));
          // About time order, as events come: a few are later than their neighbours.
          const forgetAt = now + 1_000 + Math.floor(next() * (next() < 0.05 ? 5_000 : 100));
          same(step, `add ${id}`, set.add(id, forgetAt), model.add(id, forgetAt));
          added.push(id);
        } else if (roll < 0.95) {
          const id =
            next() < 0.5 && added.length > 0
              ? added[Math.floor(next() * added.length)]!
              : kinds(next, Math.floor(next() * 100_000));
          same(step, `has ${id}`, set.has(id), model.entries.has(id));
        } else {
          now += Math.floor(next() * 400);
          same(step, `forget ${now}`, set.forgetExpired(now), model.forgetExpired(now));
        }
        same(step, 'size', set.size, model.entries.size);
      }
      expect(differences.slice(0, 5)).toEqual([]);
      // Every id ever added is found exactly when the model holds it.
      expect(added.filter((id) => set.has(id) !== model.entries.has(id))).toEqual([]);
      // All expired: empty, and usable again.
      now += 1e9;
      expect(set.forgetExpired(now)).toBe(model.forgetExpired(now));
      expect(set.size).toBe(0);
      expect(set.add('again', now + 1)).toBe(true);
      expect(set.has('again')).toBe(true);
    }
  });

  it('holds 200,000 ids of the session service’s shape, and finds each', () => {
    const set = new SessionIdSet();
    const id = (n: number) => `s${n % 16}_${n.toString(36).padStart(22, '0')}`;
    const count = 200_000;
    for (let n = 0; n < count; n += 1) set.add(id(n), n);
    expect(set.size).toBe(count);
    const missing: number[] = [];
    for (let n = 0; n < count; n += 1) if (!set.has(id(n))) missing.push(n);
    expect(missing).toEqual([]);
    expect(set.has(id(count))).toBe(false);
    expect(set.add(id(5), 0)).toBe(false);
    expect(set.forgetExpired(count / 2 - 1)).toBe(count / 2);
    expect(set.has(id(count / 2 - 1))).toBe(false);
    expect(set.has(id(count / 2))).toBe(true);
    expect(set.size).toBe(count / 2);
  });

  it('keeps every live id through a compaction and the ids added after it', () => {
    const set = new SessionIdSet();
    const id = (n: number) => `session-${n}`;
    for (let n = 0; n < 6_000; n += 1) set.add(id(n), n < 4_000 ? 1 : 10);
    // Two thirds forgotten: the live third moves to the front of the arena…
    expect(set.forgetExpired(1)).toBe(4_000);
    // …and new ids are written over where it was.
    for (let n = 6_000; n < 16_000; n += 1) set.add(id(n), 20);
    const lost: number[] = [];
    for (let n = 4_000; n < 16_000; n += 1) if (!set.has(id(n)) || set.add(id(n), 30)) lost.push(n);
    expect(lost).toEqual([]);
    expect(set.has(id(3_999))).toBe(false);
    expect(set.size).toBe(12_000);
  });

  it('reads an id from the bytes it came in, equal to the same id as a string', () => {
    const set = new SessionIdSet();
    const bytes = Buffer.from('..sé_1..');
    expect(set.addBytes(bytes, 2, 7, 10)).toBe(true);
    expect(set.has('sé_1')).toBe(true);
    expect(set.add('sé_1', 10)).toBe(false);
    expect(set.has('sé_')).toBe(false);
  });
});
