import type { MessageInPlace } from '@app/contracts';
import type { Kafka, KafkaMessage } from 'kafkajs';

/**
 * Reads the replay's history below KafkaJS's consumer: Fetch requests sent on KafkaJS's own
 * connections (so its brokers, TLS, SASL and timeouts apply), their answers walked in place. A
 * record becomes a `RawRecord`, a view over the answer's bytes that is reused from one record to
 * the next, so a replay of a million events makes no object per message, and the next fetch is
 * already asked for while this one is being handled.
 *
 * KafkaJS's consumer decodes every record of a fetch into message objects (key, value and each
 * header a Buffer of its own) before the first is handled: most of a replay's time and garbage
 * (docs/BENCHMARKS.md, "Replay behind 1,000,000 events").
 *
 * It reads only what it is sure of: a partition whose leader answers with an error, a batch that
 * is compressed, transactional or of another format, or any failure of the request, ends the
 * reading of that partition (of all of that broker's on a failed request) where it stands, and
 * says so: the caller's consumer reads the rest the usual way. So this is a fast path with the
 * consumer as its fallback, never a second source of truth.
 */

/** One partition to read: offsets `from` (inclusive) to `end` (exclusive). */
export interface HistoryRange {
  partition: number;
  from: number;
  end: number;
}

export interface HistoryReaderOptions {
  kafka: Kafka;
  topic: string;
  ranges: HistoryRange[];
  /** Largest answer to one fetch (bytes); two may be in memory at once. */
  maxBytes: number;
  /** Largest share of one partition in an answer (bytes). */
  partitionMaxBytes: number;
  /**
   * Handles one record, synchronously unless it returns a promise (then the reading waits for
   * it). `record` is only valid during the call.
   */
  onRecord: (partition: number, record: RawRecord) => Promise<void> | undefined;
  /** After the records of one partition in one answer: the next offset to read, how many read. */
  onProgress: (partition: number, next: number, read: number) => void;
  /** Asked between answers: true ends the reading (the guard is stopping). */
  shouldStop: () => boolean;
}

/** What the reading did not finish, per partition, and why: the consumer reads from there on. */
export type HistoryLeftOver = Map<number, string>;

const API_KEY_FETCH = 1;
const READ_COMMITTED = 1;
/** Record batch attributes (Kafka's DefaultRecordBatch). */
const COMPRESSION_MASK = 0x07;
const TRANSACTIONAL = 0x10;
const CONTROL = 0x20;
/** Bytes of a record batch before its records. */
const BATCH_HEADER_BYTES = 61;
/** Fetches in flight to one broker at a time (each for its share of that broker's partitions). */
const FETCHES_IN_FLIGHT = 2;
/** Answers in a row that move no partition before the reading gives up on the rest. */
const MAX_IDLE_ANSWERS = 20;
/** Bytes of a batch that its length does not count: its base offset (8) and the length (4). */
const BATCH_OVERHEAD = 12;

/**
 * A record inside a fetch answer: where its parts are in `buffer`. Reused for each record of
 * the reading; copy what must outlive the call (`message()` does).
 */
export class RawRecord implements MessageInPlace {
  buffer: Buffer = Buffer.alloc(0);
  offset = 0;
  timestamp = 0;
  /** -1 for a null key or value. */
  keyStart = -1;
  keyEnd = -1;
  valueStart = -1;
  valueEnd = -1;
  private headersStart = 0;
  private headerCount = 0;
  private readonly cursor = { at: 0 };

  /** The key as text, or undefined when null. */
  key(): string | undefined {
    return this.keyStart < 0 ? undefined : this.buffer.toString('utf8', this.keyStart, this.keyEnd);
  }

  /** Whether the first header called `name` holds exactly `value` (both ASCII); no string made. */
  headerIs(name: string, value: string): boolean {
    const { buffer } = this;
    const cursor = this.cursor;
    cursor.at = this.headersStart;
    for (let index = 0; index < this.headerCount; index += 1) {
      const nameLength = readVarint(buffer, cursor);
      const nameStart = cursor.at;
      cursor.at += nameLength;
      const valueLength = readVarint(buffer, cursor);
      const valueStart = cursor.at;
      if (valueLength > 0) cursor.at += valueLength;
      if (nameLength === name.length && sameText(buffer, nameStart, name))
        return valueLength === value.length && sameText(buffer, valueStart, value);
    }
    return false;
  }

  /** The record as KafkaJS's consumer would give it (copies of its bytes). */
  message(): KafkaMessage {
    const { buffer } = this;
    const copy = (start: number, end: number) =>
      start < 0 ? null : Buffer.from(buffer.subarray(start, end));
    const headers: Record<string, Buffer> = {};
    const cursor = { at: this.headersStart };
    for (let index = 0; index < this.headerCount; index += 1) {
      const nameLength = readVarint(buffer, cursor);
      const name = buffer.toString('utf8', cursor.at, cursor.at + nameLength);
      cursor.at += nameLength;
      const valueLength = readVarint(buffer, cursor);
      if (valueLength >= 0 && !(name in headers))
        headers[name] = Buffer.from(buffer.subarray(cursor.at, cursor.at + valueLength));
      if (valueLength > 0) cursor.at += valueLength;
    }
    return {
      key: copy(this.keyStart, this.keyEnd),
      value: copy(this.valueStart, this.valueEnd),
      headers,
      timestamp: String(this.timestamp),
      attributes: 0,
      offset: String(this.offset),
    };
  }

  /** Points the view at the record starting at `cursor.at`; moves the cursor past it. */
  read(buffer: Buffer, cursor: { at: number }, baseOffset: number, baseTimestamp: number): void {
    this.buffer = buffer;
    const length = readVarint(buffer, cursor);
    const end = cursor.at + length;
    cursor.at += 1; // attributes (unused)
    this.timestamp = baseTimestamp + readVarint(buffer, cursor);
    this.offset = baseOffset + readVarint(buffer, cursor);
    const keyLength = readVarint(buffer, cursor);
    this.keyStart = keyLength < 0 ? -1 : cursor.at;
    if (keyLength >= 0) cursor.at += keyLength;
    this.keyEnd = keyLength < 0 ? -1 : cursor.at;
    const valueLength = readVarint(buffer, cursor);
    this.valueStart = valueLength < 0 ? -1 : cursor.at;
    if (valueLength >= 0) cursor.at += valueLength;
    this.valueEnd = valueLength < 0 ? -1 : cursor.at;
    this.headerCount = readVarint(buffer, cursor);
    this.headersStart = cursor.at;
    cursor.at = end;
  }
}

/** Whether the bytes at `at` are `text`'s (an ASCII text; no string made). */
function sameText(buffer: Buffer, at: number, text: string): boolean {
  for (let index = 0; index < text.length; index += 1)
    if (buffer[at + index] !== text.charCodeAt(index)) return false;
  return true;
}

/** A zigzag varint (Kafka's records), up to 53 bits; moves the cursor past it. */
function readVarint(buffer: Buffer, cursor: { at: number }): number {
  let at = cursor.at;
  let byte = buffer[at++] ?? 0;
  let value = byte & 0x7f;
  let scale = 128;
  while (byte & 0x80) {
    byte = buffer[at++] ?? 0;
    value += (byte & 0x7f) * scale;
    scale *= 128;
  }
  cursor.at = at;
  // Zigzag: even values are positive, odd ones negative.
  return value % 2 === 0 ? value / 2 : -(value + 1) / 2;
}

/**
 * A Fetch v11 request (replica -1, no fetch session, read committed) in the shape KafkaJS's
 * connection sends: `encode` gives what its encoder appends (an object with `buf` and `buffer`).
 */
function fetchRequest(
  options: Pick<HistoryReaderOptions, 'topic' | 'maxBytes' | 'partitionMaxBytes'>,
  partitions: number[],
  offsets: Map<number, number>,
) {
  const topic = Buffer.from(options.topic, 'utf8');
  const bytes = Buffer.alloc(
    4 * 4 + 1 + 4 * 2 + 4 + 2 + topic.length + 4 + partitions.length * 28 + 4 + 2,
  );
  let at = bytes.writeInt32BE(-1, 0); // replica_id: a consumer
  at = bytes.writeInt32BE(100, at); // max_wait_time (ms): the history is there, no wait
  at = bytes.writeInt32BE(1, at); // min_bytes
  at = bytes.writeInt32BE(options.maxBytes, at);
  at = bytes.writeInt8(READ_COMMITTED, at);
  at = bytes.writeInt32BE(0, at); // session_id
  at = bytes.writeInt32BE(-1, at); // session_epoch: no fetch session
  at = bytes.writeInt32BE(1, at); // one topic
  at = bytes.writeInt16BE(topic.length, at);
  at += topic.copy(bytes, at);
  at = bytes.writeInt32BE(partitions.length, at);
  for (const partition of partitions) {
    at = bytes.writeInt32BE(partition, at);
    at = bytes.writeInt32BE(-1, at); // current_leader_epoch: unknown
    at = bytes.writeBigInt64BE(BigInt(offsets.get(partition) ?? 0), at);
    at = bytes.writeBigInt64BE(-1n, at); // log_start_offset (a follower's)
    at = bytes.writeInt32BE(options.partitionMaxBytes, at);
  }
  at = bytes.writeInt32BE(0, at); // forgotten_topics_data
  bytes.writeInt16BE(0, at); // rack_id: ''
  return {
    apiKey: API_KEY_FETCH,
    apiVersion: 11,
    apiName: 'Fetch',
    encode: () => Promise.resolve({ buf: bytes, buffer: bytes }),
  };
}

/** A partition's part of one fetch answer. */
interface PartitionAnswer {
  partition: number;
  errorCode: number;
  /** Where its records are in the answer. */
  start: number;
  end: number;
}

/** Walks a Fetch v11 answer (see kafkajs/src/protocol/requests/fetch/v11/response.js). */
function partitionsOf(buffer: Buffer, topic: string): PartitionAnswer[] {
  let at = 4; // throttle_time_ms
  const errorCode = buffer.readInt16BE(at);
  if (errorCode !== 0) throw new Error(`fetch failed with Kafka error ${errorCode}`);
  at += 2 + 4; // error_code, session_id
  const answers: PartitionAnswer[] = [];
  const topics = buffer.readInt32BE(at);
  at += 4;
  for (let t = 0; t < topics; t += 1) {
    const nameLength = buffer.readInt16BE(at);
    const name = buffer.toString('utf8', at + 2, at + 2 + nameLength);
    at += 2 + nameLength;
    const partitions = buffer.readInt32BE(at);
    at += 4;
    for (let p = 0; p < partitions; p += 1) {
      const partition = buffer.readInt32BE(at);
      const partitionError = buffer.readInt16BE(at + 4);
      at += 4 + 2 + 8 + 8 + 8; // partition, error, high watermark, last stable, log start
      const aborted = buffer.readInt32BE(at);
      at += 4 + Math.max(0, aborted) * 16;
      at += 4; // preferred_read_replica
      const size = buffer.readInt32BE(at);
      at += 4;
      const start = at;
      if (size > 0) at += size;
      if (name === topic) answers.push({ partition, errorCode: partitionError, start, end: at });
    }
  }
  return answers;
}

interface BrokerLike {
  versions?: Record<number, { minVersion: number; maxVersion: number } | undefined> | null;
  connectionPool: {
    send(request: unknown): Promise<{ buffer: Buffer }>;
  };
}

interface ClusterLike {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  addTargetTopic(topic: string): Promise<void>;
  findLeaderForPartitions(topic: string, partitions: number[]): Record<string, number[]>;
  findBroker(options: { nodeId: string }): Promise<BrokerLike>;
}

/** KafkaJS's own cluster for this client (its brokers, TLS, SASL), or undefined if not found. */
function clusterOf(kafka: Kafka): ClusterLike | undefined {
  const symbol = Object.getOwnPropertySymbols(kafka).find(
    (candidate) => candidate.description === 'private:Kafka:createCluster',
  );
  const create = symbol && (kafka as unknown as Record<symbol, unknown>)[symbol];
  if (typeof create !== 'function') return undefined;
  return (create as (options: object) => ClusterLike)({
    metadataMaxAge: 30_000,
    allowAutoTopicCreation: false,
  });
}

/**
 * Reads `ranges` (see the file's comment); resolves with what it left for the consumer. Never
 * rejects: a failure leaves its partitions over.
 */
export async function readHistory(options: HistoryReaderOptions): Promise<HistoryLeftOver> {
  const leftOver: HistoryLeftOver = new Map();
  const leaveAll = (why: string) => {
    for (const { partition } of options.ranges) leftOver.set(partition, why);
  };
  const cluster = clusterOf(options.kafka);
  if (!cluster) {
    leaveAll('KafkaJS does not expose its connections (another version)');
    return leftOver;
  }
  try {
    await cluster.connect();
    await cluster.addTargetTopic(options.topic);
    const leaders = cluster.findLeaderForPartitions(
      options.topic,
      options.ranges.map((range) => range.partition),
    );
    /** A failure leaves the partitions it stopped, where they stand (see the file's comment). */
    const leave = (ranges: HistoryRange[], error: unknown) => {
      for (const { partition } of ranges)
        if (!leftOver.has(partition)) leftOver.set(partition, (error as Error).message);
    };
    await Promise.all(
      Object.entries(leaders).map(async ([nodeId, partitions]) => {
        const ranges = options.ranges.filter((range) => partitions.includes(range.partition));
        let broker: BrokerLike;
        try {
          broker = await cluster.findBroker({ nodeId });
          const fetch = broker.versions?.[API_KEY_FETCH];
          if (!fetch || fetch.maxVersion < 11 || fetch.minVersion > 11)
            throw new Error(`broker ${nodeId} does not serve Fetch v11`);
        } catch (error) {
          leave(ranges, error);
          return;
        }
        // Its partitions in groups, each with a fetch of its own in flight: the broker reads
        // one group's next answer while this process handles the other's.
        const groups = Array.from({ length: FETCHES_IN_FLIGHT }, (_, group) =>
          ranges.filter((_range, index) => index % FETCHES_IN_FLIGHT === group),
        ).filter((group) => group.length > 0);
        await Promise.all(
          groups.map((group) =>
            readFromLeader(broker, group, options, leftOver).catch((error: unknown) => {
              leave(group, error);
            }),
          ),
        );
      }),
    );
    // Partitions without a known leader were not read.
    for (const { partition } of options.ranges)
      if (!Object.values(leaders).some((list) => list.includes(partition)))
        leftOver.set(partition, 'no leader known');
  } catch (error) {
    leaveAll((error as Error).message);
  } finally {
    await cluster.disconnect().catch(() => undefined);
  }
  return leftOver;
}

/** Fetches from one leader until its ranges are read; the next fetch is asked before handling. */
async function readFromLeader(
  broker: BrokerLike,
  ranges: HistoryRange[],
  options: HistoryReaderOptions,
  leftOver: HistoryLeftOver,
): Promise<void> {
  const next = new Map(ranges.filter((r) => r.from < r.end).map((r) => [r.partition, r.from]));
  const ends = new Map(ranges.map((r) => [r.partition, r.end]));
  const record = new RawRecord();
  let rotation = 0;
  /** The offsets the pending fetch asked for: a batch may begin before them. */
  let asked = new Map<number, number>();
  const ask = () => {
    asked = new Map(next);
    // Partitions in turn first: an answer fills them in the order asked (KIP-74).
    const partitions = [...next.keys()];
    rotation = (rotation + 1) % Math.max(1, partitions.length);
    const ordered = [...partitions.slice(rotation), ...partitions.slice(0, rotation)];
    return broker.connectionPool.send({
      request: fetchRequest(options, ordered, next),
      response: {
        decode: (payload: Buffer) => Promise.resolve({ buffer: payload }),
        parse: (decoded: { buffer: Buffer }) => Promise.resolve(decoded),
      },
      requestTimeout: 30_000,
    });
  };
  let pending = next.size > 0 ? ask() : undefined;
  try {
    let idle = 0;
    while (pending) {
      const from = asked;
      const { buffer } = await pending;
      pending = undefined;
      const answers = partitionsOf(buffer, options.topic);
      // First where each partition's answer ends, so the next fetch can be asked for at once.
      const planned = answers.map((answer) => ({ answer, ...planPartition(buffer, answer) }));
      for (const { answer, unsupported } of planned)
        if (answer.errorCode !== 0 || unsupported !== undefined) {
          next.delete(answer.partition);
          leftOver.set(
            answer.partition,
            unsupported ?? `the leader answered with Kafka error ${answer.errorCode}`,
          );
        }
      const stop = options.shouldStop();
      if (stop) for (const partition of next.keys()) leftOver.set(partition, 'stopped');
      // Partitions whose answer will be read in full move on to where it ends.
      const moved = new Map<number, number>();
      for (const { answer, nextOffset } of planned)
        if (next.has(answer.partition) && nextOffset !== undefined)
          moved.set(answer.partition, nextOffset);
      for (const [partition, offset] of moved) {
        const end = ends.get(partition) ?? 0;
        if (offset >= end) next.delete(partition);
        else next.set(partition, offset);
      }
      // An answer with nothing whole in it, again and again: the log holds no more below the end.
      idle = moved.size > 0 ? 0 : idle + 1;
      if (idle >= MAX_IDLE_ANSWERS) {
        for (const partition of next.keys())
          leftOver.set(partition, 'the leader sends nothing more');
        next.clear();
      }
      if (!stop && next.size > 0) pending = ask();
      for (const { answer, nextOffset, batchesEnd } of planned) {
        if (stop || nextOffset === undefined || !moved.has(answer.partition)) continue;
        const range = {
          from: from.get(answer.partition) ?? 0,
          end: ends.get(answer.partition) ?? 0,
        };
        const read = await handleRecords(buffer, answer, batchesEnd, record, range, options);
        options.onProgress(answer.partition, Math.min(nextOffset, range.end), read);
      }
      if (stop) break;
    }
  } finally {
    // A fetch asked for before handling failed: its answer is not read, nor its failure.
    pending?.catch(() => undefined);
  }
}

/**
 * Where a partition's answer ends: after its last whole batch (an answer may end inside one),
 * and whether it holds a batch this reader does not read.
 */
function planPartition(
  buffer: Buffer,
  answer: PartitionAnswer,
): { nextOffset?: number; batchesEnd: number; unsupported?: string } {
  let at = answer.start;
  let nextOffset: number | undefined;
  while (at + BATCH_HEADER_BYTES <= answer.end) {
    const length = buffer.readInt32BE(at + 8);
    const batchEnd = at + BATCH_OVERHEAD + length;
    if (batchEnd > answer.end) break;
    const magic = buffer.readInt8(at + 16);
    if (magic !== 2) return { nextOffset, batchesEnd: at, unsupported: `a v${magic} message set` };
    const attributes = buffer.readInt16BE(at + 21);
    const control = (attributes & CONTROL) !== 0;
    if (attributes & COMPRESSION_MASK && !control)
      return { nextOffset, batchesEnd: at, unsupported: 'a compressed batch' };
    if (attributes & TRANSACTIONAL && !control)
      return { nextOffset, batchesEnd: at, unsupported: 'a transactional batch' };
    const baseOffset = Number(buffer.readBigInt64BE(at));
    nextOffset = baseOffset + buffer.readInt32BE(at + 23) + 1;
    at = batchEnd;
  }
  return { nextOffset, batchesEnd: at };
}

/** Hands each record of the partition's whole batches in [from, end) to `onRecord`. */
async function handleRecords(
  buffer: Buffer,
  answer: PartitionAnswer,
  batchesEnd: number,
  record: RawRecord,
  { from, end }: { from: number; end: number },
  options: HistoryReaderOptions,
): Promise<number> {
  const { partition } = answer;
  const cursor = { at: answer.start };
  let read = 0;
  while (cursor.at < batchesEnd) {
    const batchStart = cursor.at;
    const batchEnd = batchStart + BATCH_OVERHEAD + buffer.readInt32BE(batchStart + 8);
    const attributes = buffer.readInt16BE(batchStart + 21);
    if (attributes & CONTROL) {
      cursor.at = batchEnd;
      continue;
    }
    const baseOffset = Number(buffer.readBigInt64BE(batchStart));
    const baseTimestamp = Number(buffer.readBigInt64BE(batchStart + 27));
    const count = buffer.readInt32BE(batchStart + 57);
    cursor.at = batchStart + BATCH_HEADER_BYTES;
    for (let index = 0; index < count; index += 1) {
      record.read(buffer, cursor, baseOffset, baseTimestamp);
      // A batch may begin before the offset asked for, and the last may reach past the end.
      if (record.offset >= end) return read;
      if (record.offset < from) continue;
      const waiting = options.onRecord(partition, record);
      if (waiting) await waiting;
      read += 1;
    }
    cursor.at = batchEnd;
  }
  return read;
}
