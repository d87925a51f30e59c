// autocannon as a process of its own: the load generator does not share an event loop (or a
// garbage collector) with the benchmark's bookkeeping, and its CPU time can be read apart.
import { fork } from 'node:child_process';
import type {
  ChildReply,
  ChildRequest,
  MeasureRequest,
  Measurement,
} from './load-generator-child.ts';
import type { BenchRun } from './run.ts';

const childFile = new URL('./load-generator-child.ts', import.meta.url);

export type LoadGenerator = ReturnType<typeof startLoadGenerator>;

export function startLoadGenerator(run: BenchRun) {
  const child = fork(childFile, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  let nextId = 0;
  child.on('message', (reply: ChildReply) => {
    const waiter = pending.get(reply.id);
    pending.delete(reply.id);
    if (reply.ok) waiter?.resolve(reply.result);
    else waiter?.reject(new Error(`load generator: ${reply.error}`));
  });
  child.once('exit', (code, signal) => {
    for (const waiter of pending.values())
      waiter.reject(new Error(`load generator exited (code ${code}, signal ${signal})`));
    pending.clear();
  });
  const ask = (message: ChildRequest) =>
    new Promise<unknown>((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      child.send({ id, ...message });
    });
  void run.trackChild('load generator', child);
  return {
    pid: child.pid,
    /** Requests to send, in order, one per token: GET with `Authorization: Bearer <token>`. */
    setTokens: (tokens: string[]) => ask({ type: 'tokens', tokens }),
    /** One autocannon run; resolves with its counts and latency percentiles (ms). */
    measure: async ({ url, path, connections, durationS }: MeasureRequest) =>
      (await ask({ type: 'measure', url, path, connections, durationS })) as Measurement,
  };
}
