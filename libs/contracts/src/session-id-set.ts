import { randomInt } from 'node:crypto';

/**
 * The revoked sessions of a RevocationStore: session id → when it may be forgotten (ms), in
 * typed arrays instead of a `Map` of strings. An API instance holds every session revoked within
 * the longest token lifetime, up to millions after a storm, and reads them all on start: in a
 * `Map` each costs ~90 bytes of V8 heap (its string, a number, the table) that the garbage
 * collector copies and scans, and an insert into a large one ~1 µs. Here an id's UTF-8 bytes go
 * into an arena, and an entry is 4 + 8 + 4 bytes plus its slot in an open-addressing table
 * (linear probing, at most 70% full): ~60 bytes for the ids our session service makes, off the
 * V8 heap, and no object per entry.
 *
 * Entries are kept in the order they were added; `forgetExpired` drops them from the oldest and
 * stops at the first one still needed, as the store's pruning always did (ids are added in about
 * the order of their time). Exact: two ids are the same entry only when their bytes are equal.
 */
const MIN_ENTRIES = 1 << 10;
const MIN_SLOTS = 1 << 11;

export class SessionIdSet {
  /** Each entry's id: a 2-byte length, then the UTF-8 bytes. */
  private arena = Buffer.allocUnsafe(1 << 16);
  private arenaEnd = 0;
  /** Per entry, by its number: where its id is in the arena, its hash, when to forget it. */
  private entryOffset = new Uint32Array(MIN_ENTRIES);
  private entryHash = new Int32Array(MIN_ENTRIES);
  private entryForgetAt = new Float64Array(MIN_ENTRIES);
  /** Entries [first, next) are live; those before `first` were forgotten (reused at compaction). */
  private first = 0;
  private next = 0;
  /**
   * The table: slot i is `slots[2i]`, an entry number + 1 (0: empty), and `slots[2i + 1]`, its
   * hash, side by side: a probe past other ids reads one cache line, not their entries.
   */
  private slots = new Int32Array(2 * MIN_SLOTS);
  private mask = MIN_SLOTS - 1;
  /** Scratch space for the id being looked up. */
  private scratch = Buffer.allocUnsafe(1024);
  /** Per process: ids cannot be picked to collide in one instance's table. */
  private readonly seed = randomInt(0x7fffffff) | 1;

  get size(): number {
    return this.next - this.first;
  }

  has(id: string): boolean {
    const length = this.encode(id);
    return this.slotOf(this.scratch, 0, length, this.hash(this.scratch, 0, length)) < 0;
  }

  /** Adds `id` unless present; returns whether it was added. */
  add(id: string, forgetAt: number): boolean {
    const length = this.encode(id);
    return this.addBytes(this.scratch, 0, length, forgetAt);
  }

  /** Adds the id whose UTF-8 bytes are `bytes[start, end)` unless present. */
  addBytes(bytes: Buffer, start: number, end: number, forgetAt: number): boolean {
    const hash = this.hash(bytes, start, end);
    const found = this.slotOf(bytes, start, end, hash);
    if (found < 0) return false;
    const slot = found - 1;
    const length = end - start;
    if (length > 0xffff) throw new RangeError('session id longer than 65,535 bytes');
    const entry = this.newEntry(length + 2);
    this.arena.writeUInt16LE(length, this.arenaEnd);
    bytes.copy(this.arena, this.arenaEnd + 2, start, end);
    this.entryOffset[entry] = this.arenaEnd;
    this.entryHash[entry] = hash;
    this.entryForgetAt[entry] = forgetAt;
    this.arenaEnd += length + 2;
    this.slots[2 * slot] = entry + 1;
    this.slots[2 * slot + 1] = hash;
    // At most 70% full: past that, twice the slots (a new slot for it is found there).
    if (this.size * 10 > (this.mask + 1) * 7) this.rehash((this.mask + 1) * 2);
    return true;
  }

  /**
   * Forgets entries from the oldest while their time is ≤ `now`, up to the first that is not;
   * returns how many went.
   */
  forgetExpired(now: number): number {
    let dropped = 0;
    while (this.first < this.next && (this.entryForgetAt[this.first] ?? Infinity) <= now) {
      this.removeSlotOf(this.first);
      this.first += 1;
      dropped += 1;
    }
    // Forgotten entries (and their ids) take no room for long: compacted once they are half.
    if (this.first > MIN_ENTRIES && this.first * 2 > this.next) this.compact();
    return dropped;
  }

  /** Puts the id's UTF-8 bytes into `scratch`; returns how many. */
  private encode(id: string): number {
    const { length } = id;
    if (length * 3 > this.scratch.length)
      this.scratch = Buffer.allocUnsafe(Math.max(length * 3, this.scratch.length * 2));
    const { scratch } = this;
    // ASCII (every id of ours) without a call into C++; anything else by the encoder.
    for (let index = 0; index < length; index += 1) {
      const code = id.charCodeAt(index);
      if (code >= 0x80) return scratch.write(id, 0, 'utf8');
      scratch[index] = code;
    }
    return length;
  }

  /** FNV-1a over the bytes, from the seed. */
  private hash(bytes: Buffer, start: number, end: number): number {
    let hash = this.seed;
    for (let index = start; index < end; index += 1)
      hash = Math.imul(hash ^ (bytes[index] ?? 0), 16777619);
    return hash | 0;
  }

  /** -1 - the slot holding these bytes when present; else 1 + the empty slot where they go. */
  private slotOf(bytes: Buffer, start: number, end: number, hash: number): number {
    const { slots, mask } = this;
    let slot = hash & mask;
    for (;;) {
      const entry = (slots[2 * slot] ?? 0) - 1;
      if (entry < 0) return slot + 1;
      if (slots[2 * slot + 1] === hash && this.sameId(entry, bytes, start, end)) return -1 - slot;
      slot = (slot + 1) & mask;
    }
  }

  private sameId(entry: number, bytes: Buffer, start: number, end: number): boolean {
    const offset = this.entryOffset[entry] ?? 0;
    const length = end - start;
    if (this.arena.readUInt16LE(offset) !== length) return false;
    const from = offset + 2;
    for (let index = 0; index < length; index += 1)
      if (this.arena[from + index] !== bytes[start + index]) return false;
    return true;
  }

  /** The number of a new entry whose id takes `bytes` of the arena; grows what is full. */
  private newEntry(bytes: number): number {
    if (this.arenaEnd + bytes > this.arena.length) {
      const arena = Buffer.allocUnsafe(Math.max(this.arena.length * 2, this.arenaEnd + bytes));
      this.arena.copy(arena, 0, 0, this.arenaEnd);
      this.arena = arena;
    }
    if (this.next === this.entryOffset.length) {
      const capacity = this.entryOffset.length * 2;
      this.entryOffset = grown(this.entryOffset, new Uint32Array(capacity));
      this.entryHash = grown(this.entryHash, new Int32Array(capacity));
      this.entryForgetAt = grown(this.entryForgetAt, new Float64Array(capacity));
    }
    const entry = this.next;
    this.next += 1;
    return entry;
  }

  /** Empties the slot of `entry`, moving the entries after it back (linear probing's delete). */
  private removeSlotOf(entry: number): void {
    const { mask, slots } = this;
    let hole = (this.entryHash[entry] ?? 0) & mask;
    while (slots[2 * hole] !== entry + 1) hole = (hole + 1) & mask;
    let slot = hole;
    for (;;) {
      slot = (slot + 1) & mask;
      if (slots[2 * slot] === 0) break;
      const home = (slots[2 * slot + 1] ?? 0) & mask;
      // It stays when its home lies (cyclically) after the hole, up to where it is.
      const stays = hole <= slot ? hole < home && home <= slot : hole < home || home <= slot;
      if (stays) continue;
      slots[2 * hole] = slots[2 * slot] ?? 0;
      slots[2 * hole + 1] = slots[2 * slot + 1] ?? 0;
      hole = slot;
    }
    slots[2 * hole] = 0;
  }

  /** Puts every live entry into a table of `size` slots. */
  private rehash(size: number): void {
    const slots = new Int32Array(2 * size);
    const mask = size - 1;
    for (let entry = this.first; entry < this.next; entry += 1) {
      const hash = this.entryHash[entry] ?? 0;
      let slot = hash & mask;
      while (slots[2 * slot] !== 0) slot = (slot + 1) & mask;
      slots[2 * slot] = entry + 1;
      slots[2 * slot + 1] = hash;
    }
    this.slots = slots;
    this.mask = mask;
  }

  /** Moves the live entries (and their ids) to the front, and renumbers them in the table. */
  private compact(): void {
    const { first, next } = this;
    const from = first < next ? (this.entryOffset[first] ?? 0) : this.arenaEnd;
    this.arena.copy(this.arena, 0, from, this.arenaEnd);
    this.arenaEnd -= from;
    for (let entry = first; entry < next; entry += 1) {
      const to = entry - first;
      this.entryOffset[to] = (this.entryOffset[entry] ?? 0) - from;
      this.entryHash[to] = this.entryHash[entry] ?? 0;
      this.entryForgetAt[to] = this.entryForgetAt[entry] ?? 0;
    }
    this.first = 0;
    this.next = next - first;
    // Smaller again when most went (never under the starting sizes): at most half full after.
    let capacity = this.entryOffset.length;
    while (capacity > MIN_ENTRIES && this.next * 4 <= capacity) capacity /= 2;
    if (capacity < this.entryOffset.length) {
      this.entryOffset = this.entryOffset.slice(0, capacity);
      this.entryHash = this.entryHash.slice(0, capacity);
      this.entryForgetAt = this.entryForgetAt.slice(0, capacity);
    }
    let size = this.mask + 1;
    while (size > MIN_SLOTS && this.next * 4 <= size) size /= 2;
    this.rehash(size);
  }
}

function grown<T extends Uint32Array | Int32Array | Float64Array>(from: T, to: T): T {
  to.set(from);
  return to;
}
