// Benchmark: the web console (apps/gateway/web), issue 13. How long after a revocation the
// other device's page shows that it was signed out, in a real headless Chromium: a page of
// the console signed in as one user (its own browser context: a device), a second session of
// that user (a phone) logs out everywhere, and the page's MutationObserver notes when the
// signed-out notice appears. What it starts and measures: bench/README.md ("Web console").
// Results in bench/results/console.json.
//
//   node --disable-warning=TimeoutNegativeWarning bench/console.ts   (npm run bench:console)
//
// BENCH_CONSOLE_REVOCATIONS overrides the default (100; at least 50 for the goal).
import { join } from 'node:path';
import { launchChromium } from '../scripts/browser/chromium.ts';
import { build } from '../scripts/build.ts';
import { envInt } from '../scripts/lib/process.ts';
import { bearer, post, type TokenReply } from './lib/http.ts';
import {
  clock,
  distribution,
  envelope,
  formatMs,
  msFields,
  printSummary,
  writeResults,
} from './lib/report.ts';
import { benchRun, log, Stage } from './lib/run.ts';
import { BENCH_PASSWORD, startCore, writeBenchUsers } from './lib/stack.ts';

/** What is measured; recorded with the results so runs can be compared. */
const parameters = {
  revocations: envInt('BENCH_CONSOLE_REVOCATIONS', 100, { min: 1 }),
  warmup_revocations: 5,
  revoked_with: 'POST /auth/logout-all with the access token of a second (phone) session',
  t0: "the logout-all's answer, in this process",
  t1: "the signed-out notice in the page's DOM (a MutationObserver's Date.now(), same clock)",
  browser: 'Debian chromium, headless, driven by playwright-core; a fresh context per sample',
  goal: 'p99 <= 1,500 ms',
};

const run = benchRun({ wholeRunMs: 180_000 + parameters.revocations * 10_000 });

/** Installed in every page (browser code, as a string): when the signed-out notice appears. */
const OBSERVE_NOTICE = `
  new MutationObserver(() => {
    if (window.signedOutAt === undefined &&
        document.querySelector('[data-testid="signed-out-notice"]') !== null)
      window.signedOutAt = Date.now();
  }).observe(document, { subtree: true, childList: true });
`;

await run.main(async () => {
  await build();
  run.makeDataDir();
  const usersFile = join(run.dataDir, 'users.json');
  writeBenchUsers(usersFile, 1);
  const core = await startCore(run, {
    topic: `bench-console-${Date.now().toString(36)}`,
    apps: ['content-api', 'gateway'],
    env: { 'session-service': { USERS_FILE: usersFile } },
  });
  const gateway = core.system.app('gateway');
  const browser = await launchChromium();
  run.track(Stage.client, 'chromium', browser, () => browser.close());
  const user = 'bench-0';
  const samples: number[] = [];
  const total = parameters.warmup_revocations + parameters.revocations;
  log(`${parameters.warmup_revocations} warm-up revocations, then ${parameters.revocations}`);
  for (let i = 0; i < total; i += 1) {
    run.checkRunning('the console benchmark');
    const context = await browser.newContext({ baseURL: `http://localhost:${gateway.port}` });
    try {
      const page = await context.newPage();
      await page.addInitScript({ content: OBSERVE_NOTICE });
      // Signed in as the console does it, then the page as a user opens it.
      await page.goto('/');
      await page.getByLabel('Username').fill(user);
      await page.getByLabel('Password').fill(BENCH_PASSWORD);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.locator('body[data-session-stream="open"]').waitFor({ timeout: 15_000 });
      const phone = await post(`${core.sessionService.url}/auth/login`, {
        ...{ username: user, password: BENCH_PASSWORD, device: { name: 'phone' } },
      });
      if (phone.status !== 200) throw new Error(`phone sign-in: ${phone.status} ${phone.text}`);
      const { access_token } = JSON.parse(phone.text) as TokenReply;
      const reply = await post(`${core.sessionService.url}/auth/logout-all`, undefined, {
        headers: bearer(access_token),
      });
      const t0 = clock();
      if (reply.status !== 204) throw new Error(`logout-all answered ${reply.status}`);
      // A function, not a string: the console's CSP allows no eval.
      const shown = await page.waitForFunction(
        () => (globalThis as { signedOutAt?: number }).signedOutAt,
        undefined,
        { timeout: 15_000 },
      );
      const t1 = (await shown.jsonValue()) as number;
      if (i >= parameters.warmup_revocations) samples.push(t1 - t0);
    } finally {
      await context.close();
    }
    if ((i + 1) % 25 === 0) log(`${i + 1} of ${total}`);
  }

  const dist = distribution(samples);
  const p99 = dist.p99 ?? Infinity;
  const results = {
    ...msFields(dist, 'console_signout_visible_'),
    console_signout_visible_samples: samples.length,
    goal: { statement: parameters.goal, met: p99 <= 1_500 && samples.length >= 50 },
    ...envelope({ kafka: true }),
    parameters,
  };
  const file = writeResults('console.json', results);
  printSummary([
    `Web console, headless Chromium (load ${results.machine.load_average_1_5_15m.join(' ')})`,
    `  logout-all answered → the other device's page shows it was signed out (${samples.length}):`,
    `    ${formatMs(dist)}   (goal p99 <= 1,500 ms: ${results.goal.met ? 'met' : 'NOT met'})`,
    `Results: ${file}`,
  ]);
});
