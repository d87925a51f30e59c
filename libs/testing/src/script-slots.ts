import { Redis } from 'ioredis';

/** CRC16/XMODEM, as Redis Cluster computes it for key slots. */
function crc16(bytes: Buffer): number {
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit += 1)
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** The Redis Cluster hash slot of `key`: of its `{tag}` when it has a non-empty one. */
export function keySlot(key: string): number {
  const open = key.indexOf('{');
  if (open !== -1) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) return crc16(Buffer.from(key.slice(open + 1, close))) % 16_384;
  }
  return crc16(Buffer.from(key)) % 16_384;
}

/** One script run as Redis executed it: the keys it declared and every key it touched. */
export interface ScriptRun {
  declared: string[];
  touched: string[];
}

/**
 * Watches Redis (MONITOR) and collects every Lua script run whose keys start with `prefix`:
 * the keys it declared in KEYS and those the commands it ran touched (resolved by
 * `COMMAND GETKEYS`, as Redis Cluster would see them). What `redis-cli --cluster` checks,
 * for a test to run the system's scripts under: every key of a script in one slot.
 */
export class ScriptSlotRecorder {
  private readonly runs: { declared: string[]; commands: string[][] }[] = [];
  private current: { declared: string[]; commands: string[][] } | undefined;

  private constructor(
    private readonly admin: Redis,
    private readonly monitor: Awaited<ReturnType<Redis['monitor']>>,
    private readonly prefix: string,
  ) {}

  static async start(url: string, prefix: string): Promise<ScriptSlotRecorder> {
    const admin = new Redis(url);
    const monitor = await admin.duplicate().monitor();
    const recorder = new ScriptSlotRecorder(admin, monitor, prefix);
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      recorder.seen(args, source);
    });
    return recorder;
  }

  private seen(args: string[], source: string): void {
    const [name = ''] = args;
    if (source === 'lua') {
      this.current?.commands.push(args);
      return;
    }
    this.current = undefined;
    if (!/^eval(sha)?(_ro)?$/i.test(name)) return;
    const count = Number(args[2]);
    this.current = { declared: args.slice(3, 3 + count), commands: [] };
    this.runs.push(this.current);
  }

  /** Every script run seen so far that concerns `prefix`, with the keys each touched. */
  async scriptRuns(): Promise<ScriptRun[]> {
    const runs: ScriptRun[] = [];
    for (const { declared, commands } of this.runs) {
      const touched = new Set<string>();
      for (const command of commands) {
        const keys = (await this.admin
          .call('COMMAND', 'GETKEYS', ...command)
          .catch(() => [])) as string[];
        for (const key of keys) touched.add(key);
      }
      // This test's scripts only (others may share the Redis): by a key under its prefix.
      if ([...declared, ...touched].some((key) => key.startsWith(this.prefix)))
        runs.push({ declared, touched: [...touched] });
    }
    return runs;
  }

  async stop(): Promise<void> {
    this.monitor.disconnect();
    await this.admin.quit();
  }
}
