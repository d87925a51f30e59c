import { isIP } from 'node:net';
import { z } from 'zod';
import { secret } from './validate-env';

/** Reads a comma-separated list, e.g. `KAFKA_BROKERS=127.0.0.1:9092,127.0.0.1:9093`. */
export const csv = z
  .string()
  .transform((value) =>
    value
      .split(',')
      .map((item) => item.trim())
      .filter(Boolean),
  )
  .pipe(z.array(z.string()).min(1, 'needs at least one entry'));

/** A variable holding JSON, parsed and then checked with `schema`. */
export function jsonEnv<S extends z.ZodType>(schema: S) {
  return z
    .string()
    .transform((text, ctx) => {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'is not valid JSON' });
        return z.NEVER;
      }
    })
    .pipe(schema);
}

export const port = z.coerce.number().int().min(1).max(65_535);

/** Positive integer given as text (`"250"`), e.g. milliseconds or counts. */
export const positiveInt = z.coerce.number().int().positive();

/** INSTANCE_ID: names one instance of an app; `describe` says where the name shows. */
export const instanceId = (describe: string) =>
  z.string().min(1).max(100).optional().describe(describe);

/** `true`/`false`/`1`/`0`/`yes`/`no`, case-insensitive. */
export const flag = z
  .enum(['true', 'false', '1', '0', 'yes', 'no', 'TRUE', 'FALSE', 'YES', 'NO'])
  .transform((value) => ['true', '1', 'yes'].includes(value.toLowerCase()));

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** Whether a URL is plain http to somewhere other than this machine. */
export function isInsecureRemoteUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' && !LOOPBACK_HOSTS.has(url.hostname);
  } catch {
    return false; // not a URL at all: its own schema says so
  }
}

/**
 * ALLOW_INSECURE_HTTP: plain http to other hosts for URLs that carry keys or identities
 * (JWKS_URL, ISSUER). Only for a private network (e.g. docker-compose's); never across one.
 */
export const allowInsecureHttpEnv = z.object({
  ALLOW_INSECURE_HTTP: flag
    .default(false)
    .describe('allow plain http to other hosts for JWKS_URL / ISSUER (a private network only)'),
});

/**
 * A rule for the app schema's `superRefine`: each of `variables` must be https, or http on
 * loopback, unless ALLOW_INSECURE_HTTP says otherwise. Over plain http, anyone on the path
 * can hand an API keys of their choosing and have it accept any token.
 */
export function secureUrlRules(variables: readonly string[]) {
  return (env: Record<string, unknown>, ctx: z.RefinementCtx): void => {
    if (env.ALLOW_INSECURE_HTTP === true) return;
    for (const variable of variables) {
      const value = env[variable];
      if (typeof value === 'string' && isInsecureRemoteUrl(value))
        ctx.addIssue({
          code: 'custom',
          path: [variable],
          message: 'must be https (plain http only on loopback, or with ALLOW_INSECURE_HTTP=true)',
        });
    }
  };
}

export const logLevel = z.enum(['fatal', 'error', 'warn', 'log', 'debug', 'verbose']);

const isAddressOrRange = (entry: string): boolean => {
  const [address = '', bits, ...rest] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (bits === undefined) return true;
  const prefix = Number(bits);
  return /^\d{1,3}$/.test(bits) && prefix <= (family === 4 ? 32 : 128);
};

/**
 * Which proxies in front of an app to believe about the client's address (X-Forwarded-For):
 * none (default: the peer of the connection is the client), a hop count (`1`: the last proxy
 * in front), or the proxies' addresses and ranges (`10.0.0.0/8,127.0.0.1`). Never "everyone":
 * a client could then choose its own address and escape every per-address limit.
 */
export const trustProxy = z
  .string()
  .trim()
  .optional()
  .transform((value, ctx): false | number | string[] => {
    if (value === undefined || value === '' || value.toLowerCase() === 'false') return false;
    if (/^\d+$/.test(value)) return Number(value);
    const entries = value
      .split(',')
      .map((entry) => entry.trim())
      .filter(Boolean);
    if (entries.length > 0 && entries.every(isAddressOrRange)) return entries;
    ctx.addIssue({
      code: 'custom',
      message: 'must be a hop count or a list of proxy addresses / CIDR ranges (not "true")',
    });
    return z.NEVER;
  });
export type TrustProxy = z.output<typeof trustProxy>;

/** Every HTTP app: where it listens and how much it logs. */
export const httpEnv = (defaultPort: number) =>
  z.object({
    NODE_ENV: z
      .enum(['development', 'production', 'test'])
      .default('development')
      .describe('`production` never loads demo data and warns about open operations endpoints'),
    HTTP_HOST: z
      .string()
      .min(1)
      .default('127.0.0.1')
      .describe('address to listen on (`0.0.0.0` in Docker)'),
    HTTP_PORT: port
      .default(defaultPort)
      .describe(
        'port: 3000 session service, 3001 publisher, 3100 content API, 3200 account API, 8080 gateway',
      ),
    LOG_LEVEL: logLevel
      .default('log')
      .describe('`fatal` `error` `warn` `log` `debug` `verbose` (JSON lines)'),
    TRUST_PROXY: trustProxy.describe(
      'proxies whose `X-Forwarded-For` gives the client address: a hop count, or their addresses / CIDR ranges; unset: none',
    ),
    OPS_TOKEN: secret(
      z
        .string()
        .min(16)
        .optional()
        .describe(
          'bearer token for /metrics, /docs and the details of /health/ready (set it in production); unset: open',
        ),
    ),
  });

export const kafkaEnv = z.object({
  KAFKA_BROKERS: csv.default(['127.0.0.1:9092']).describe('comma-separated bootstrap brokers'),
  KAFKA_CLIENT_ID: z
    .string()
    .min(1)
    .optional()
    .describe("Kafka client id (default: the app's name)"),
  KAFKA_SSL: flag
    .default(false)
    .describe("TLS to the brokers, trusting the system's CAs (or KAFKA_SSL_CA_FILE)"),
  KAFKA_SSL_CA_FILE: z
    .string()
    .min(1)
    .optional()
    .describe("PEM file of the CA(s) of the brokers' certificates; turns TLS on"),
  KAFKA_SASL_MECHANISM: z
    .enum(['scram-sha-512', 'scram-sha-256', 'plain'])
    .optional()
    .describe(
      'SASL authentication: `scram-sha-512` (recommended), `scram-sha-256`, `plain` (with TLS only)',
    ),
  KAFKA_SASL_USERNAME: z.string().min(1).optional().describe('SASL user'),
  KAFKA_SASL_PASSWORD: secret(z.string().min(1).optional().describe('SASL password')),
  KAFKA_SASL_PASSWORD_FILE: z
    .string()
    .min(1)
    .optional()
    .describe(
      'file holding the SASL password (e.g. a mounted secret), instead of KAFKA_SASL_PASSWORD',
    ),
});

/**
 * Rules across the Kafka variables, for the app schema's `superRefine` (applied last: zod
 * refuses to `.extend` a refined object).
 */
export function kafkaEnvRules(
  env: {
    KAFKA_SASL_MECHANISM?: string | undefined;
    KAFKA_SASL_USERNAME?: string | undefined;
    KAFKA_SASL_PASSWORD?: string | undefined;
    KAFKA_SASL_PASSWORD_FILE?: string | undefined;
  },
  ctx: z.RefinementCtx,
): void {
  if (env.KAFKA_SASL_MECHANISM === undefined) return;
  if (env.KAFKA_SASL_USERNAME === undefined)
    ctx.addIssue({
      code: 'custom',
      path: ['KAFKA_SASL_USERNAME'],
      message: 'KAFKA_SASL_MECHANISM needs it',
    });
  if ((env.KAFKA_SASL_PASSWORD === undefined) === (env.KAFKA_SASL_PASSWORD_FILE === undefined))
    ctx.addIssue({
      code: 'custom',
      path: ['KAFKA_SASL_PASSWORD'],
      message: 'KAFKA_SASL_MECHANISM needs KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE',
    });
}

/** `host:port` of a Redis Cluster node (IPv6 in brackets: `[::1]:7000`). */
const clusterNode = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):\d{1,5}$/, 'must be host:port')
  .transform((value) => {
    const colon = value.lastIndexOf(':');
    return {
      host: value.slice(0, colon).replace(/^\[|\]$/g, ''),
      port: Number(value.slice(colon + 1)),
    };
  })
  .pipe(z.object({ host: z.string().min(1), port: z.number().int().min(1).max(65_535) }));

export const redisEnv = z.object({
  REDIS_URL: z
    .url({ protocol: /^rediss?$/ })
    .default('redis://127.0.0.1:6380')
    .describe(
      'Redis to keep sessions and the outbox in (`rediss://` for TLS); ignored with REDIS_CLUSTER_NODES',
    ),
  REDIS_CLUSTER_NODES: csv
    .pipe(z.array(clusterNode))
    .optional()
    .describe(
      'a Redis Cluster instead of REDIS_URL: comma-separated `host:port` of some of its nodes (the rest are discovered); no TLS',
    ),
});

export type HttpEnv = z.output<ReturnType<typeof httpEnv>>;
export type KafkaEnv = z.output<typeof kafkaEnv>;
export type RedisEnv = z.output<typeof redisEnv>;
