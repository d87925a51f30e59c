// autocannon as a process of its own: the load generator does not share an event loop (or a
// garbage collector) with the benchmark's bookkeeping, and its CPU time can be read apart.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Stage } from './run.mjs';

const childFile = fileURLToPath(new URL('./load-generator-child.mjs', import.meta.url));

export function startLoadGenerator(run) {
  const child = fork(childFile, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let exited = false;
  const exit = new Promise((resolve) => child.once('exit', () => resolve((exited = true))));
  const pending = new Map();
  let nextId = 0;
  child.on('message', ({ id, ok, result, error }) => {
    const waiter = pending.get(id);
    pending.delete(id);
    if (ok) waiter?.resolve(result);
    else waiter?.reject(new Error(`load generator: ${error}`));
  });
  child.once('exit', (code, signal) => {
    for (const waiter of pending.values())
      waiter.reject(new Error(`load generator exited (code ${code}, signal ${signal})`));
    pending.clear();
  });
  const ask = (message) =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      child.send({ id, ...message });
    });
  const handle = {
    pid: child.pid,
    isAlive: () => !exited,
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exit;
      clearTimeout(timer);
    },
    /** Requests to send, in order, one per token: GET with `Authorization: Bearer <token>`. */
    setTokens: (tokens) => ask({ type: 'tokens', tokens }),
    /** One autocannon run; resolves with its counts and latency percentiles (ms). */
    measure: ({ url, path, connections, durationS }) =>
      ask({ type: 'measure', url, path, connections, durationS }),
  };
  return run.track(Stage.client, 'load generator', handle);
}
