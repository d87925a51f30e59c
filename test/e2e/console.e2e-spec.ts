// The web console in a real Chromium (playwright-core on Debian's chromium), served by a real
// gateway in front of a real session service, publisher, content API, Kafka and Redis, each
// app a process of its own. Two browser contexts are two devices of one user.
import AxeBuilder from '@axe-core/playwright';
import { eventually, testInfra, uniqueName } from '@app/testing';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page, Request } from 'playwright-core';
import {
  DEV_IDP_NAME,
  root,
  startSystem,
  type AppHandle,
  type RunningSystem,
} from '../../scripts/system.ts';
import { launchChromium } from '../../scripts/browser/chromium.ts';

/**
 * Where the screenshots go: the run's data folder, or (WRITE_DOCS_SCREENSHOTS=1) the ones the
 * README shows, in docs/console/: a test run leaves the working tree as it found it.
 */
const SCREENSHOTS =
  process.env.WRITE_DOCS_SCREENSHOTS === '1'
    ? join(root, 'docs', 'console')
    : join(process.env.TEST_DATA_DIR ?? tmpdir(), 'console-screenshots');
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 800 };

let system: RunningSystem;
let gateway: AppHandle;
let browser: Browser;
const contexts: BrowserContext[] = [];
const keyPrefix = `${uniqueName('console')}:`;

beforeAll(async () => {
  const infra = testInfra();
  const topic = uniqueName('console-revocations');
  browser = await launchChromium();
  system = await startSystem({
    dataDir: join(process.env.TEST_DATA_DIR ?? '/tmp', topic),
    // The dev OpenID provider too: the sign-in page offers it ("Sign in with Dev IdP").
    apps: ['dev-idp', 'session-service', 'revocation-publisher', 'content-api', 'gateway'],
    kafka: { brokers: infra.kafkaBrokers.join(',') },
    redis: { url: infra.redisUrl },
    env: (app): Record<string, string> => {
      switch (app) {
        case 'session-service':
          return {
            REDIS_KEY_PREFIX: keyPrefix,
            DEFAULT_MAX_DEVICES: '50',
            RATE_LIMIT_FAILS_PER_USERNAME: '1000',
            RATE_LIMIT_PER_IP: '1000',
          };
        case 'revocation-publisher':
          return { REDIS_KEY_PREFIX: keyPrefix, REVOCATION_TOPIC: topic };
        case 'gateway':
          return { REVOCATION_TOPIC: topic, GATEWAY_KEY_PREFIX: `${keyPrefix}gw:` };
        case 'content-api':
        case 'account-api':
          return { REVOCATION_TOPIC: topic };
        case 'dev-idp':
        case 'ssf-transmitter':
          return {};
      }
    },
  });
  gateway = system.app('gateway');
});

afterAll(async () => {
  await Promise.allSettled(contexts.map((context) => context.close()));
  await (browser as Browser | undefined)?.close();
  await (system as RunningSystem | undefined)?.stop();
});

/** A browser context: one device. Pages talk to the gateway at http://localhost:<port>. */
async function device(viewport = DESKTOP): Promise<Page> {
  const context = await browser.newContext({ viewport, baseURL: origin() });
  contexts.push(context);
  return context.newPage();
}
const origin = () => `http://localhost:${gateway.port}`;

async function signIn(page: Page, username: string): Promise<void> {
  await page.goto('/');
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(`${username}-pass`);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Your devices' }).waitFor();
  // The page listens for its session's end from here on.
  await page.locator('body[data-session-stream="open"]').waitFor();
}

/** What `fetch` from the page gets for a proxied call with its cookie and `x-csrf`. */
const apiStatus = (page: Page) =>
  page.evaluate(async () => {
    const response = await fetch('/api/content/me', { headers: { 'x-csrf': '1' } });
    return response.status;
  });

/** The session service directly, as an admin (to set plans in a test's set-up). */
async function asAdmin(method: string, path: string, body?: unknown): Promise<number> {
  const url = system.sessionServiceUrl;
  const login = await fetch(`${url}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: 'admin-pass', device: { name: 'tests' } }),
  });
  const { access_token } = (await login.json()) as { access_token: string };
  const answer = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${access_token}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return answer.status;
}

async function noSeriousViolations(page: Page, name: string): Promise<void> {
  const { violations } = await new AxeBuilder({ page }).analyze();
  const serious = violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id}: ${v.help} (${v.nodes.length})`);
  expect({ page: name, serious }).toEqual({ page: name, serious: [] });
}

async function screenshots(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  for (const [label, viewport] of [
    ['desktop', DESKTOP],
    ['phone', PHONE],
  ] as const) {
    await page.setViewportSize(viewport);
    await page.screenshot({ path: join(SCREENSHOTS, `${name}-${label}.png`), fullPage: true });
  }
  await page.setViewportSize(DESKTOP);
}

describe('web console (real Chromium, real gateway and services)', () => {
  it('signs out the other devices: the other one is told why at once, its API calls get 401, this one stays', async () => {
    const a = await device();
    const b = await device();
    await signIn(a, 'alice');
    await signIn(b, 'alice');
    await a.reload();
    await a.getByRole('button', { name: 'Sign out all other devices' }).click();
    await a.getByText('All other devices are signed out.').waitFor();

    // Told by the gateway's own stream, not a reload, within the 2 s the console promises (a
    // bound, not a measurement: bench/console.ts measures it, p99 in the low hundreds of ms).
    const notice = b.getByTestId('signed-out-notice');
    await notice.waitFor({ timeout: 2_000 });
    expect(await notice.textContent()).toContain('signed out from another device');
    expect(await apiStatus(b)).toBe(401);
    expect(await apiStatus(a)).toBe(200);
    await a.reload();
    await a.getByRole('heading', { name: 'Your devices' }).waitFor();
  });

  it('at a device limit with reject, the new device signs one out from the list and gets in; that one is told', async () => {
    expect(
      await asAdmin('PUT', '/admin/users/bob/plan', { max_devices: 1, policy: 'reject' }),
    ).toBe(200);
    try {
      const first = await device();
      await signIn(first, 'bob');
      const second = await device(PHONE);
      await second.goto('/');
      await second.getByLabel('Username').fill('bob');
      await second.getByLabel('Password').fill('bob-pass');
      await second.getByRole('button', { name: 'Sign in' }).click();
      await second.getByText('Your plan allows no more devices').waitFor();
      await screenshots(second, 'device-limit');
      await noSeriousViolations(second, 'device limit');
      await second.getByRole('button', { name: /^Sign out .* and sign in here$/ }).click();
      await second.getByRole('heading', { name: 'Your devices' }).waitFor();
      const notice = first.getByTestId('signed-out-notice');
      await notice.waitFor({ timeout: 5_000 });
      expect(await notice.textContent()).toContain('chose to sign this device out');
    } finally {
      await asAdmin('PUT', '/admin/users/bob/plan', { max_devices: 10, policy: 'evict_oldest' });
    }
  });

  it('admin: a live feed of revocations as they happen, with the reason; a user cannot open it', async () => {
    const admin = await device();
    await signIn(admin, 'admin');
    await admin.getByRole('link', { name: 'Admin' }).click();
    await admin.getByTestId('feed-state').filter({ hasText: 'live' }).waitFor();

    const carol = await device();
    await signIn(carol, 'alice');
    await admin.getByLabel('User id').fill('alice');
    await admin.getByRole('button', { name: 'Find sessions' }).click();
    await admin.getByTestId('admin-sessions').waitFor();
    await admin.getByLabel(/^Reason/).fill('laptop reported stolen');
    await admin.getByRole('button', { name: 'End all sessions of alice' }).click();

    await admin
      .getByTestId('feed')
      .getByRole('row')
      .filter({ hasText: 'laptop reported stolen' })
      .first()
      .waitFor({ timeout: 5_000 });
    const notice = carol.getByTestId('signed-out-notice');
    await notice.waitFor({ timeout: 5_000 });
    expect(await notice.textContent()).toContain('laptop reported stolen');
    await screenshots(admin, 'admin');
    await noSeriousViolations(admin, 'admin');

    // A user: no link, a refusal on the page, and the admin API refused, not just hidden.
    const user = await device();
    await signIn(user, 'bob');
    expect(await user.getByRole('link', { name: 'Admin' }).count()).toBe(0);
    await user.goto('/#/admin');
    await user.getByText('Only administrators can open this page.').waitFor();
    const refused = await user.evaluate(async () => {
      const answer = await fetch('/api/session/admin/users/alice/sessions', {
        headers: { 'x-csrf': '1' },
      });
      const stream = await fetch('/bff/events');
      return [answer.status, stream.status];
    });
    expect(refused).toEqual([403, 403]);
  });

  it('signs in with the OpenID provider: its login page, then the devices view, signed in', async () => {
    const page = await device();
    // A sign-in that came back without a session: the reason in words, taken off the URL.
    await page.goto('/?sso_error=access_denied');
    expect(await page.getByRole('alert').textContent()).toContain('was cancelled');
    expect(new URL(page.url()).search).toBe('');
    const landings: Request[] = [];
    page.on('request', (request) => {
      if (request.isNavigationRequest() && request.url() === `${origin()}/`) landings.push(request);
    });
    await page.getByRole('link', { name: `Sign in with ${DEV_IDP_NAME}` }).click();
    // The provider's own page, at its own (cross-site) origin.
    await page.waitForURL((url) => url.origin === system.devIdpUrl);
    await page.getByLabel('Username').waitFor();
    await noSeriousViolations(page, 'provider sign-in');
    await page.getByLabel('Username').fill('alice');
    await page.getByLabel('Password').fill('alice-pass');
    await page.getByRole('button', { name: 'Sign in' }).click();
    // Back at the console, signed in: the session cookie (SameSite=Strict) went with the
    // same-site hop that followed the cross-site callback.
    await page.getByRole('heading', { name: 'Your devices' }).waitFor();
    expect(new URL(page.url()).origin).toBe(origin());
    // The landing navigation itself carried the new cookie (a redirect straight from the
    // callback would not: that chain began at the provider, cross-site).
    const landing = landings.at(-1);
    expect((await landing?.allHeaders())?.cookie ?? '').toContain('__Host-session=');
    await page.locator('body[data-session-stream="open"]').waitFor();
    expect(await page.locator('.who').textContent()).toMatch(/^oidc-/);
    await eventually('this device in the list', async () =>
      (await page.getByTestId('devices').getByRole('listitem').count()) > 0 ? true : undefined,
    );
  });

  it('pages are accessible and fit a phone: sign-in and your devices', async () => {
    const page = await device();
    await page.goto('/');
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await noSeriousViolations(page, 'sign in');
    await screenshots(page, 'sign-in');
    await signIn(page, 'alice');
    await eventually('the device list', async () =>
      (await page.getByTestId('devices').getByRole('listitem').count()) > 0 ? true : undefined,
    );
    await noSeriousViolations(page, 'your devices');
    await screenshots(page, 'devices');
  });
});
