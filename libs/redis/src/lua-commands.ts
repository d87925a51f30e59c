import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Cluster, type ChainableCommander, type Redis } from 'ioredis';
import { z } from 'zod';

/** A Redis client the scripts run on: a single node or a Cluster (ioredis defines commands on both). */
export type RedisClient = Redis | Cluster;

/** One server-side command: a Lua file with its includes inlined. */
export interface LuaCommandSource {
  name: string;
  numberOfKeys: number;
  lua: string;
}

const FILE_NAME = /^([A-Za-z][A-Za-z0-9]*)-(\d+)\.lua$/;
const INCLUDE = /^--- @include "([^"]+)"[ \t]*$/gm;

/**
 * Inlines `--- @include "<path>"` lines (relative to `dir`, `.lua` added), each file once even
 * when included from several places; an include cycle is an error.
 */
function resolveIncludes(
  dir: string,
  text: string,
  seen: Set<string>,
  stack: string[] = [],
): string {
  return text.replace(INCLUDE, (_, path: string) => {
    const file = resolve(dir, `${path}.lua`);
    if (stack.includes(file)) throw new Error(`Lua include cycle: ${[...stack, file].join(' → ')}`);
    if (seen.has(file)) return `-- (${path} already included)`;
    seen.add(file);
    return resolveIncludes(dir, readFileSync(file, 'utf8'), seen, [...stack, file]);
  });
}

/**
 * The commands in `dir`, one per `<name>-<numberOfKeys>.lua` file (the BullMQ convention: the
 * file name says how many of its arguments are keys). Shared pieces live in sub-folders and
 * are pulled in with `--- @include "includes/<file>"`.
 */
export function loadLuaCommands(dir: string): Map<string, LuaCommandSource> {
  const commands = new Map<string, LuaCommandSource>();
  for (const entry of readdirSync(dir)) {
    const match = FILE_NAME.exec(entry);
    if (!match) continue;
    const [, name = '', keys = '0'] = match;
    const lua = resolveIncludes(dir, readFileSync(join(dir, entry), 'utf8'), new Set());
    commands.set(name, { name, numberOfKeys: Number(keys), lua });
  }
  return commands;
}

type CommandMethod = (...args: string[]) => Promise<unknown>;

/**
 * A Lua command with typed input and output: every key in KEYS (so Redis Cluster can route it
 * and check its slot), one JSON argument (decoded with `cjson` in the script), and a JSON reply
 * checked by `reply`. Runs through ioredis `defineCommand`: EVALSHA, EVAL when not cached.
 */
export class LuaCommand<A, R> {
  constructor(
    readonly source: LuaCommandSource,
    private readonly reply: z.ZodType<R>,
  ) {}

  get name(): string {
    return this.source.name;
  }

  async run(redis: RedisClient, keys: readonly string[], arg: A): Promise<R> {
    const method = this.method(redis, keys);
    return this.parse(await method.call(redis, ...keys, JSON.stringify(arg)));
  }

  /**
   * Runs the command and then `follow`'s commands in one pipeline, on one connection: on a
   * Cluster the pipeline goes to the node serving the keys' slot, so a command about "this
   * connection's writes" (WAIT, WAITAOF) covers this command's. Returns the command's reply
   * and the followers' replies; any error is thrown.
   *
   * On a Cluster whose slot map is stale (after a failover), the node refuses the command with
   * `MOVED`, without running it, while the followers run. ioredis sends a pipeline again only
   * when all its commands were refused alike (or are read-only), so it leaves this one failed:
   * here the slot map is read again and the whole pipeline sent again, a few times at most.
   */
  async runFollowedBy(
    redis: RedisClient,
    keys: readonly string[],
    arg: A,
    follow: (pipeline: ChainableCommander) => void,
  ): Promise<{ reply: R; followers: unknown[] }> {
    this.method(redis, keys); // defined on the client, hence on its pipelines
    for (let attempt = 1; ; attempt += 1) {
      const pipeline = redis.pipeline();
      const method = (pipeline as unknown as Record<string, CommandMethod | undefined>)[this.name];
      if (typeof method !== 'function') throw new Error(`no pipeline command ${this.name}`);
      void method.call(pipeline, ...keys, JSON.stringify(arg));
      follow(pipeline);
      const results = (await pipeline.exec()) ?? [];
      if (results.length === 0) throw new Error(`${this.name}: the pipeline was discarded`);
      const [[commandError] = [null]] = results;
      if (redis instanceof Cluster && isMoved(commandError) && attempt < MOVED_ATTEMPTS) {
        await refreshSlots(redis);
        continue;
      }
      const failed = results.find(([error]) => error);
      if (failed) throw failed[0] ?? new Error(`${this.name}: a pipelined command failed`);
      const [[, raw], ...followers] = results as [[null, unknown], ...[null, unknown][]];
      return { reply: this.parse(raw), followers: followers.map(([, value]) => value) };
    }
  }

  /** The client's method for this command, defined on first use. */
  private method(redis: RedisClient, keys: readonly string[]): CommandMethod {
    const { name, numberOfKeys, lua } = this.source;
    if (keys.length !== numberOfKeys)
      throw new Error(`${name} takes ${numberOfKeys} keys, got ${keys.length}`);
    const client = redis as unknown as Record<string, CommandMethod | undefined>;
    if (typeof client[name] !== 'function') redis.defineCommand(name, { numberOfKeys, lua });
    const method = client[name];
    if (typeof method !== 'function') throw new Error(`could not define the command ${name}`);
    return method;
  }

  private parse(raw: unknown): R {
    if (typeof raw !== 'string')
      throw new Error(`${this.name} replied with ${typeof raw}, not JSON`);
    return this.reply.parse(JSON.parse(raw));
  }
}

/** Pipelines a stale slot map sent to the wrong node are sent again this many times in all. */
const MOVED_ATTEMPTS = 3;

/** A Cluster node's refusal of a command whose slot another node serves (the command did not run). */
function isMoved(error: Error | null | undefined): boolean {
  return error?.message.startsWith('MOVED ') ?? false;
}

/** Reads the Cluster's slot map again (or waits for the reading under way); never throws. */
function refreshSlots(cluster: Cluster): Promise<void> {
  return new Promise((resolve) => {
    cluster.refreshSlotsCache(() => {
      resolve();
    });
  });
}

/**
 * Looks a command up by name in what {@link loadLuaCommands} found, with its reply schema (the
 * reply type follows from it); `.takes<Argument>()` then names the argument's type:
 *
 * ```ts
 * const lease = luaCommand(commands, 'lease', z.object({ result: z.string() })).takes<{ owner: string }>();
 * ```
 */
export function luaCommand<S extends z.ZodType>(
  commands: Map<string, LuaCommandSource>,
  name: string,
  reply: S,
): { takes<A>(): LuaCommand<A, z.output<S>> } {
  const source = commands.get(name);
  if (!source) throw new Error(`no Lua command "${name}" (expected a file ${name}-<keys>.lua)`);
  return {
    takes: <A>() => new LuaCommand<A, z.output<S>>(source, reply as z.ZodType<z.output<S>>),
  };
}

/**
 * A list in a Lua command's JSON reply: Redis's `cjson` encodes an empty Lua table as `{}`, so
 * an empty object is read as an empty list.
 */
export function luaArray<T extends z.ZodType>(item: T) {
  return z.preprocess(
    (value) =>
      typeof value === 'object' &&
      value !== null &&
      !Array.isArray(value) &&
      Object.keys(value).length === 0
        ? []
        : value,
    z.array(item),
  );
}
