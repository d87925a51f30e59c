/** One instance of an upstream service, as GATEWAY_UPSTREAMS lists it. */
export interface Instance {
  readonly service: string;
  /** Its base URL, without a trailing slash. */
  readonly base: string;
  /** When its last connection failure happened (epoch ms); 0 when it never failed. */
  failedAt: number;
}

/**
 * The configured upstreams with passive health: each request starts at the next instance of
 * its service (round-robin); an instance whose connection failed is skipped for `coolOffMs`.
 * Nothing probes an instance: the first request after the cool-off finds out whether it is
 * back. When every instance of a service is down, they are all tried anyway, the least
 * recently failed first, rather than refusing without a try.
 */
export class Upstreams {
  private readonly services: Map<string, Instance[]>;
  private readonly cursor = new Map<string, number>();

  constructor(
    config: Record<string, string[]>,
    private readonly coolOffMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.services = new Map(
      Object.entries(config).map(([service, urls]) => [
        service,
        urls.map((url) => ({ service, base: url.replace(/\/+$/, ''), failedAt: 0 })),
      ]),
    );
  }

  has(service: string): boolean {
    return this.services.has(service);
  }

  /**
   * The instances one request may try, in order: the healthy ones from the round-robin
   * position, then those in their cool-off, least recently failed first.
   */
  order(service: string): Instance[] {
    const instances = this.services.get(service) ?? [];
    const now = this.now();
    const healthy = instances.filter((instance) => !this.isDown(instance, now));
    const down = instances
      .filter((instance) => this.isDown(instance, now))
      .sort((a, b) => a.failedAt - b.failedAt);
    const start = this.cursor.get(service) ?? 0;
    this.cursor.set(service, start + 1);
    const from = healthy.length === 0 ? 0 : start % healthy.length;
    return [...healthy.slice(from), ...healthy.slice(0, from), ...down];
  }

  /** The connection to `instance` failed: skip it for the cool-off. */
  failed(instance: Instance): void {
    instance.failedAt = this.now();
  }

  /** It answered: it is back, whatever its cool-off said. */
  answered(instance: Instance): void {
    instance.failedAt = 0;
  }

  private isDown(instance: Instance, now: number): boolean {
    return instance.failedAt !== 0 && now - instance.failedAt < this.coolOffMs;
  }
}

/** Errors by which a connection to an upstream failed before any response came. */
const CONNECTION_FAILED = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_CLOSED',
]);

/**
 * Whether an error @fastify/reply-from reports (its own error, the cause attached) means the
 * instance could not be reached, as opposed to an answer it gave. reply-from reports an
 * answer, even a 5xx, as a response, never as an error.
 */
export function connectionFailed(error: unknown): boolean {
  return codesOf(error).some((code) => CONNECTION_FAILED.has(code));
}

/** Errors by which an upstream took the request but its answer did not come in time. */
const TIMED_OUT = new Set([
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'FST_REPLY_FROM_GATEWAY_TIMEOUT',
  'FST_REPLY_FROM_TIMEOUT',
]);

/** Whether an error @fastify/reply-from reports means the upstream's answer timed out. */
export function timedOut(error: unknown): boolean {
  return codesOf(error).some((code) => TIMED_OUT.has(code));
}

/** The error's code and its cause's. */
function codesOf(error: unknown): string[] {
  return [error, (error as { cause?: unknown } | undefined)?.cause]
    .map((item) => (item as { code?: unknown } | undefined)?.code)
    .filter((code): code is string => typeof code === 'string');
}
