// Benchmark: signing out at the OpenID provider (issue 14). How long after a user confirms
// "sign out" at the provider every API instance refuses the session the user opened through
// the gateway, the provider's back-channel call included: the dev provider (oidc-provider)
// POSTs a logout token to the session service, which ends the session through the outbox, the
// publisher puts the event on the topic, and every API instance applies it. What it starts and
// measures: bench/README.md ("Provider sign-out"). Results in bench/results/idp-logout.json.
//
//   node --disable-warning=TimeoutNegativeWarning bench/idp-logout.ts   (npm run bench:idp-logout)
//
// BENCH_IDP_LOGOUTS overrides the number of sign-outs measured (default 200).
import { Redis } from 'ioredis';
import { createHash } from 'node:crypto';
import { build } from '../scripts/build.ts';
import { envInt } from '../scripts/lib/process.ts';
import { builtLib } from './lib/built.ts';
import { bearer, keepAliveAgent } from './lib/http.ts';
import { acceptedEverywhere, refusalFigures, refusedEverywhere } from './lib/refusals.ts';
import {
  clock,
  distribution,
  envelope,
  formatMs,
  printSummary,
  writeResults,
} from './lib/report.ts';
import { benchRun, log, Stage } from './lib/run.ts';
import { startCore } from './lib/stack.ts';

/** What is measured; recorded with the results so runs can be compared. */
const parameters = {
  api_instances: { 'content-api': 2, 'account-api': 2 },
  sign_outs: envInt('BENCH_IDP_LOGOUTS', 200, { min: 1 }),
  warmup_sign_outs: 10,
  signed_in_with:
    "the gateway's GET /bff/login/oidc, the provider's login form (a fresh browser each time), the gateway's callback",
  signed_out_with:
    "the provider's end-session confirmation form (POST /session/end/confirm), as a browser submits it",
  t0: 'just before the confirmation is sent, in this process',
  t1: 'the last API instance answering 401 to the access token (GET /me, polled back to back)',
  goal: 'p99 <= 250 ms',
};
const GATEWAY_PREFIX = 'bench-gw:';

const run = benchRun({ wholeRunMs: 240_000 + parameters.sign_outs * 3_000 });

await run.main(async () => {
  await build();
  run.makeDataDir();
  const core = await startCore(run, {
    topic: `bench-idp-logout-${Date.now().toString(36)}`,
    apps: ['dev-idp', 'content-api', 'account-api', 'gateway'],
    instances: parameters.api_instances,
    env: { gateway: { GATEWAY_KEY_PREFIX: GATEWAY_PREFIX } },
  });
  const { system } = core;
  const provider = system.devIdpUrl ?? '';
  const gateway = system.app('gateway');
  const apis = [...system.instances('content-api'), ...system.instances('account-api')];
  const redis = new Redis(system.redisUrl, { lazyConnect: true });
  await redis.connect();
  run.track(Stage.client, 'redis client', redis, () => {
    redis.disconnect();
    return Promise.resolve();
  });
  const checked = apis.map((api) => ({ api, agent: keepAliveAgent(1) }));
  const { BrowserClient, parseForms, signInThroughProvider } = builtLib('testing');

  const samples = [];
  const answered: number[] = [];
  const otherStatus: Record<number, number> = {};
  const total = parameters.warmup_sign_outs + parameters.sign_outs;
  log(`${parameters.warmup_sign_outs} warm-up sign-outs, then ${parameters.sign_outs}`);
  for (let i = 0; i < total; i += 1) {
    run.checkRunning('the provider sign-outs');
    const browser = new BrowserClient();
    const landed = await signInThroughProvider(
      browser,
      `${gateway.url}/bff/login/oidc?return_to=/`,
      provider,
      { username: 'alice', password: 'alice-pass' },
    );
    const handle = browser.cookie('127.0.0.1', '__Host-session');
    if (!handle) throw new Error(`no cookie session after the code flow (at ${landed.url})`);
    const stored = await redis.get(
      `${GATEWAY_PREFIX}bff:${createHash('sha256').update(handle).digest('hex')}`,
    );
    if (stored === null) throw new Error('the gateway keeps no tokens for the cookie session');
    const { access_token, session_id } = JSON.parse(stored) as {
      access_token: string;
      session_id: string;
    };
    const points = checked.map(({ api, agent }) => ({
      label: api.label,
      url: `${api.url}/me`,
      headers: bearer(access_token),
      agent,
      sessionId: session_id,
    }));
    await acceptedEverywhere(points, 10_000);

    const confirm = await browser.navigate(`${provider}/session/end`);
    const [form] = parseForms(confirm.text, confirm.url);
    if (!form) throw new Error(`no sign-out form at ${confirm.url} (${confirm.status})`);
    const sentAt = clock();
    const refused = refusedEverywhere(points, { sentAt, t0: sentAt }, 15_000, otherStatus);
    const done = await browser.submit(form);
    const answeredAt = clock();
    if (done.status !== 200) throw new Error(`the provider's sign-out answered ${done.status}`);
    const sample = await refused;
    if (i >= parameters.warmup_sign_outs) {
      samples.push(sample);
      answered.push(answeredAt - sentAt);
    }
    if ((i + 1) % 50 === 0) log(`${i + 1} of ${total}`);
  }
  for (const { agent } of checked) agent.destroy();

  const figures = refusalFigures('idp_logout_propagation_', samples);
  const dist = distribution(samples.map((s) => s.total));
  const p99 = dist.p99 ?? Infinity;
  const results = {
    ...figures,
    provider_sign_out_answer_ms: distribution(answered),
    other_status: otherStatus,
    goal: { statement: parameters.goal, met: p99 <= 250 && samples.length >= 100 },
    ...envelope({ kafka: true }),
    parameters,
  };
  const file = writeResults('idp-logout.json', results);
  printSummary([
    `Provider sign-out (load ${results.machine.load_average_1_5_15m.join(' ')})`,
    `  sign-out confirmed at the provider → every API instance refuses (${samples.length}, ${apis.length} instances):`,
    `    ${formatMs(dist)}   (goal p99 <= 250 ms: ${results.goal.met ? 'met' : 'NOT met'})`,
    `  the provider's answer to the confirmation: ${formatMs(distribution(answered))}`,
    `Results: ${file}`,
  ]);
});
