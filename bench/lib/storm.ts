// A storm of revocations straight onto the revocation topic, at a steady rate, as the
// publisher writes them (libs/contracts: a session-revoked SET per message, key = user id,
// the contract's headers), from a KafkaJS producer in the benchmark's process. Each event ends
// a session of its own that no token in the benchmark belongs to, so every one is new to an
// API instance's store and none refuses a request being measured.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel } from 'kafkajs';
import { builtLib } from './built.ts';
import { request } from './http.ts';
import { clock, round } from './report.ts';
import { log, Stage, type BenchRun } from './run.ts';

export interface StormOptions {
  brokers: string;
  topic: string;
  /** The `iss` of the events: the session service's issuer URL. */
  issuer: string;
  eventsPerS: number;
  /** One send every this many ms, of as many events as the rate asks for. */
  everyMs: number;
  /** Users the revoked sessions belong to (the partition keys). */
  users: number;
}

/** A producer, connected and tracked by `run`, that storms the topic between `begin` and `end`. */
export async function revocationStorm(run: BenchRun, options: StormOptions) {
  const { buildRevocationEvent, encodeRevocation } = builtLib('contracts');
  const kafka = new Kafka({
    clientId: 'bench-storm',
    brokers: options.brokers.split(','),
    logLevel: logLevel.NOTHING,
  });
  // As the publisher sends: idempotent, acks = all, one request in flight.
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  run.track(Stage.client, 'storm producer', producer, () => producer.disconnect());
  /** At most a second's worth in one send: a late producer catches up in a send or two. */
  const maxPerSend = options.eventsPerS;
  let produced = 0;
  let loop: Promise<void> | undefined;
  let stopping = false;
  const prefix = randomUUID().slice(0, 8);

  /** The revocation message of the `n`th storm event, stamped `at`. */
  const message = (n: number, at: number) => {
    const event = buildRevocationEvent({
      issuer: options.issuer,
      userId: `storm-user-${n % options.users}`,
      sessionId: `storm-${prefix}-${n}`,
      initiatingEntity: 'user',
      reason: 'user_logout',
      at,
    });
    return { ...encodeRevocation(event), timestamp: String(at) };
  };

  /**
   * Every `everyMs`, sends the events due by then at the rate: however long a send takes (one
   * request in flight), the rate holds as long as the producer and the broker keep up.
   */
  async function storm(): Promise<void> {
    const startedAt = clock();
    const first = produced;
    while (!stopping) {
      const due = Math.floor(((clock() - startedAt) / 1000) * options.eventsPerS);
      const count = Math.min(maxPerSend, first + due - produced);
      if (count > 0) {
        const at = Date.now();
        const messages = Array.from({ length: count }, (_, i) => message(produced + i, at));
        await producer.send({ topic: options.topic, acks: -1, messages });
        produced += count;
      }
      await sleep(options.everyMs);
    }
  }

  let began = 0;
  let producedAtBegin = 0;
  return {
    /** Starts storming (in the background; a failed send fails the run at `end`). */
    begin(): void {
      if (loop) throw new Error('the storm is already blowing');
      stopping = false;
      began = clock();
      producedAtBegin = produced;
      loop = storm();
      loop.catch(() => undefined); // awaited, and reported, by `end`
    },
    /** Stops storming; resolves with what was produced since `begin`. */
    async end() {
      stopping = true;
      await loop;
      loop = undefined;
      const seconds = (clock() - began) / 1000;
      const events = produced - producedAtBegin;
      return { events, seconds: round(seconds, 2), events_per_s: round(events / seconds, 0) };
    },
    /** Every event produced so far. */
    get produced(): number {
      return produced;
    },
  };
}

export type RevocationStorm = Awaited<ReturnType<typeof revocationStorm>>;

/** How many revocation messages an API instance's guard has read (its /metrics). */
export async function revocationsRead(apiUrl: string): Promise<number> {
  const reply = await request(`${apiUrl}/metrics`);
  if (reply.status !== 200) throw new Error(`${apiUrl}/metrics answered ${reply.status}`);
  let total = 0;
  for (const [, count] of reply.text.matchAll(
    /^revocation_guard_events_total\{[^}]*kind="revocation"[^}]*\} (\d+)/gm,
  ))
    total += Number(count);
  return total;
}

/**
 * Until the instance at `apiUrl` has read `target` revocation messages; resolves with how long
 * that took, or fails after `timeoutMs`.
 */
export async function readUpTo(
  run: BenchRun,
  apiUrl: string,
  target: number,
  timeoutMs: number,
): Promise<number> {
  const from = clock();
  let read = 0;
  await run.until(
    `the API instance to read ${target} revocations`,
    async () => (read = await revocationsRead(apiUrl)) >= target,
    timeoutMs,
    () => ` (read ${read})`,
  );
  const ms = clock() - from;
  if (ms > 1_000) log(`the instance caught up with the storm ${Math.round(ms)} ms after it ended`);
  return round(ms, 1);
}
