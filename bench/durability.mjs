// Benchmark: what REDIS_DURABILITY costs a logout, side by side in one run.
//
// Three setups, each its own Redis (and replica) and session-service process (from dist/),
// measured in turns (A B C A B C…), so the machine's noise falls on all of them alike:
//   local_everysec   REDIS_DURABILITY=local,    Redis appendfsync everysec
//   local_always     REDIS_DURABILITY=local,    Redis appendfsync always (stack and compose)
//   replicas         REDIS_DURABILITY=replicas, appendfsync always, one replica (WAIT 1)
// On Redis < 7.2 (Debian 12's 7.0) `local` cannot wait for the fsync (no WAITAOF): it is as
// durable as appendfsync makes it, which is what the first two setups show the cost of.
// Each round: sessions are opened by OIDC sign-in (pre-signed ID tokens), then logged out,
// `concurrency` at a time; the latency of each POST /auth/logout (204) is recorded.
// Results go to bench/results/durability.json.
//
//   node --disable-warning=TimeoutNegativeWarning bench/durability.mjs
//
// BENCH_ROUNDS, BENCH_LOGOUTS and BENCH_CONCURRENCY override the defaults (3, 1500, 16).
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { startApp } from '../scripts/apps.mjs';
import { build } from '../scripts/build.mjs';
import { freePort } from '../scripts/lib/process.mjs';
import { startRedis } from '../scripts/redis/redis.mjs';
import { command, distribution, machine, round } from './lib/report.mjs';
import { benchRun, log, root, Stage } from './lib/run.mjs';

const require = createRequire(import.meta.url);
const resultsFile = join(root, 'bench', 'results', 'durability.json');

const envNumber = (name, fallback) => {
  const value = Number(process.env[name]);
  return Number.isFinite(value) && value > 0 ? value : fallback;
};

const parameters = {
  rounds: Math.floor(envNumber('BENCH_ROUNDS', 3)),
  logouts_per_round: Math.floor(envNumber('BENCH_LOGOUTS', 1_500)),
  concurrency: Math.floor(envNumber('BENCH_CONCURRENCY', 16)),
};

const SETUPS = {
  local_everysec: { durability: 'local', appendfsync: 'everysec', replica: false },
  local_always: { durability: 'local', appendfsync: 'always', replica: false },
  replicas: { durability: 'replicas', appendfsync: 'always', replica: true },
};

const run = benchRun({ wholeRunMs: 280_000 });

async function startSetup(name, setup, dataDir, issuer) {
  const dir = join(dataDir, name);
  const primary = run.track(
    Stage.infrastructure,
    `${name} redis`,
    await startRedis({ dataDir: join(dir, 'primary'), appendfsync: setup.appendfsync, log }),
  );
  if (setup.replica) {
    run.track(
      Stage.infrastructure,
      `${name} replica`,
      await startRedis({
        dataDir: join(dir, 'replica'),
        appendfsync: setup.appendfsync,
        args: ['--replicaof', '127.0.0.1', String(primary.port)],
        log,
      }),
    );
  }
  const service = await startApp({
    name: 'session-service',
    label: `session-${name}`,
    port: await freePort(),
    logFile: join(dir, 'session-service.log'),
    env: {
      NODE_ENV: 'development',
      REDIS_URL: primary.url,
      REDIS_DURABILITY: setup.durability,
      DEFAULT_MAX_DEVICES: '1000',
      RATE_LIMIT_PER_IP: '1000000',
      LOG_LEVEL: 'warn',
      OIDC_ISSUERS: JSON.stringify([
        { issuer: issuer.issuer, jwks_uri: issuer.jwksUri, audience: issuer.audience },
      ]),
    },
  });
  run.track(Stage.app, `session-${name}`, service);
  return service;
}

async function call(service, path, { body, token } = {}) {
  const response = await fetch(`${service.url}${path}`, {
    method: 'POST',
    headers: {
      ...(body ? { 'content-type': 'application/json' } : {}),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: body ? JSON.stringify(body) : null,
    signal: AbortSignal.timeout(30_000),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : {} };
}

/** Opens `count` sessions (a user each), then logs them out; the logouts' latencies. */
async function openThenLogOut(service, idTokens) {
  const tokens = [];
  for (let i = 0; i < idTokens.length; i += parameters.concurrency) {
    const answers = await Promise.all(
      idTokens
        .slice(i, i + parameters.concurrency)
        .map((idToken) =>
          call(service, '/auth/oidc', { body: { id_token: idToken, device: { name: 'bench' } } }),
        ),
    );
    for (const answer of answers) {
      if (answer.status !== 200) throw new Error(`sign-in answered ${answer.status}`);
      tokens.push(answer.body.access_token);
    }
  }
  const latencies = [];
  const errors = {};
  let next = 0;
  const startedAt = performance.now();
  await Promise.all(
    Array.from({ length: parameters.concurrency }, async () => {
      while (next < tokens.length && run.aborted === undefined) {
        const token = tokens[next++];
        const t0 = performance.now();
        const { status } = await call(service, '/auth/logout', { token });
        if (status === 204) latencies.push(performance.now() - t0);
        else errors[status] = (errors[status] ?? 0) + 1;
      }
    }),
  );
  return { latencies, errors, seconds: (performance.now() - startedAt) / 1000 };
}

async function main() {
  await build();
  const { startOidcIssuer } = require(join(root, 'dist', 'libs', 'testing', 'src', 'index.js'));
  const dataDir = run.makeDataDir();
  const issuer = await startOidcIssuer();
  run.track(Stage.client, 'oidc issuer', { stop: () => issuer.stop() });

  const services = {};
  for (const [name, setup] of Object.entries(SETUPS))
    services[name] = await startSetup(name, setup, dataDir, issuer);

  const samples = Object.fromEntries(Object.keys(SETUPS).map((name) => [name, []]));
  const rates = Object.fromEntries(Object.keys(SETUPS).map((name) => [name, []]));
  const errors = Object.fromEntries(Object.keys(SETUPS).map((name) => [name, {}]));
  let user = 0;
  for (let roundNo = 1; roundNo <= parameters.rounds; roundNo += 1) {
    for (const name of Object.keys(SETUPS)) {
      run.checkRunning(name);
      const idTokens = await Promise.all(
        Array.from({ length: parameters.logouts_per_round }, () =>
          issuer.sign({ sub: `bench-${(user += 1)}` }),
        ),
      );
      const result = await openThenLogOut(services[name], idTokens);
      samples[name].push(...result.latencies);
      rates[name].push(result.latencies.length / result.seconds);
      for (const [status, count] of Object.entries(result.errors))
        errors[name][status] = (errors[name][status] ?? 0) + count;
      log(
        `round ${roundNo} ${name}: ${result.latencies.length} logouts, p50 ${round(distribution(result.latencies).p50)} ms`,
      );
      await sleep(200);
    }
  }

  const setups = Object.fromEntries(
    Object.entries(SETUPS).map(([name, setup]) => {
      const dist = distribution(samples[name]);
      return [
        name,
        {
          ...setup,
          logouts: samples[name].length,
          p50_ms: dist.p50,
          p95_ms: dist.p95,
          p99_ms: dist.p99,
          max_ms: dist.max,
          logouts_per_s_per_round: rates[name].map((r) => round(r)),
          errors: errors[name],
        },
      ];
    }),
  );
  const ratio = (a, b, key) => round(setups[a][key] / setups[b][key]);
  const results = {
    benchmark: 'durability',
    description:
      'POST /auth/logout latency per REDIS_DURABILITY setup, measured in turns in one run (Redis 7.0: no WAITAOF)',
    durability_logout_p50_ms: Object.fromEntries(
      Object.entries(setups).map(([name, r]) => [name, r.p50_ms]),
    ),
    durability_logout_p99_ms: Object.fromEntries(
      Object.entries(setups).map(([name, r]) => [name, r.p99_ms]),
    ),
    replicas_vs_local_always_p50_ratio: ratio('replicas', 'local_always', 'p50_ms'),
    local_always_vs_everysec_p50_ratio: ratio('local_always', 'local_everysec', 'p50_ms'),
    setups,
    parameters,
    machine: machine(),
    command: command(),
    date: new Date().toISOString(),
  };
  mkdirSync(join(root, 'bench', 'results'), { recursive: true });
  writeFileSync(resultsFile, `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(
    [
      '',
      `Logout latency by REDIS_DURABILITY (${parameters.rounds} rounds × ${parameters.logouts_per_round}, ${parameters.concurrency} in flight)`,
      ...Object.entries(setups).map(
        ([name, r]) =>
          `  ${name.padEnd(16)} p50 ${r.p50_ms} ms  p99 ${r.p99_ms} ms  (${r.logouts} logouts)`,
      ),
      `  replicas / local_always p50: ${results.replicas_vs_local_always_p50_ratio}`,
      `Results: ${relative(root, resultsFile)}`,
      '',
    ].join('\n'),
  );
}

run.main(main);
