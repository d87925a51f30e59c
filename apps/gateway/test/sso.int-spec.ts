// Single sign-on through the gateway (issue 14): the dev OpenID provider (oidc-provider), the
// session service trusting it, the publisher, content-api and two gateway instances, each a
// process of its own, on the run's Kafka and Redis. A browser-like client (one cookie jar,
// redirects and meta refreshes followed, forms submitted) walks the code flow: the first gateway
// shows the provider's login form, the second (another origin) signs in silently through the
// provider's SSO session; the logout's end-session URL works at the provider; broken flows end
// at the console with a clear error, never a 500.
import {
  BrowserClient,
  closeServer,
  parseForms,
  signInThroughProvider,
  testInfra,
  uniqueName,
  type Page,
} from '@app/testing';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import {
  DEV_IDP_NAME,
  GATEWAY_CLIENT_ID,
  startSystem,
  type RunningSystem,
} from '../../../scripts/system.ts';

let system: RunningSystem;
let idp: string;
/** The two gateway instances as a browser sees them: at 127.0.0.1 and at localhost. */
let gw1: string;
let gw2: string;
/** Logout tokens the provider POSTed (its back-channel logout, pointed here for this spec). */
const logoutTokens: string[] = [];
let receiver: Server;

const ALICE = { username: 'alice', password: 'alice-pass' };
const ADMIN = { username: 'admin', password: 'admin-pass' };

beforeAll(async () => {
  const infra = testInfra();
  const topic = uniqueName('sso-revocations');
  const keyPrefix = `${uniqueName('sso')}:`;
  receiver = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      const token = new URLSearchParams(body).get('logout_token');
      if (token !== null) logoutTokens.push(token);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/backchannel`;
  system = await startSystem({
    dataDir: join(process.env.TEST_DATA_DIR ?? '/tmp', topic),
    apps: ['dev-idp', 'session-service', 'revocation-publisher', 'content-api', 'gateway'],
    instances: { gateway: 2 },
    kafka: { brokers: infra.kafkaBrokers.join(',') },
    redis: { url: infra.redisUrl },
    env: (app, _label, running): Record<string, string> => {
      switch (app) {
        case 'dev-idp':
          // The system's wiring, with the back-channel logout sent to this spec's receiver.
          return {
            DEV_IDP_CLIENTS: JSON.stringify([
              {
                client_id: GATEWAY_CLIENT_ID,
                client_secret: running.idpClientSecret,
                redirect_uris: running.gatewayOrigins.map((origin) => `${origin}/bff/callback`),
                post_logout_redirect_uris: running.gatewayOrigins.map((origin) => `${origin}/`),
                backchannel_logout_uri: receiverUrl,
              },
            ]),
          };
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
        case 'ssf-transmitter':
          return {};
      }
    },
  });
  idp = system.app('dev-idp').url;
  const [first, second] = system.instances('gateway');
  if (!first || !second) throw new Error('two gateway instances expected');
  gw1 = `http://127.0.0.1:${first.port}`;
  gw2 = `http://localhost:${second.port}`;
});

afterAll(async () => {
  await (system as RunningSystem | undefined)?.stop();
  await closeServer(receiver);
});

/** A same-origin call of the console at `gateway` (cookie from the jar, x-csrf, Origin). */
async function consoleCall(
  client: BrowserClient,
  gateway: string,
  method: string,
  path: string,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await client.request(`${gateway}${path}`, {
    method,
    headers: { 'x-csrf': '1', origin: gateway, accept: 'application/json' },
  });
  const text = await response.text();
  return {
    status: response.status,
    json: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>),
  };
}

const ssoError = (page: Page) => new URL(page.url).searchParams.get('sso_error');
const hostOf = (url: string) => new URL(url).hostname;

describe('single sign-on through the gateway (dev OpenID provider, code flow with PKCE)', () => {
  it('offers the provider to the console', async () => {
    const response = await fetch(`${gw1}/bff/providers`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual([{ name: DEV_IDP_NAME, login_url: '/bff/login/oidc' }]);
  });

  it('starts the code flow with PKCE, state and nonce, behind a short-lived SameSite=Lax flow cookie', async () => {
    const client = new BrowserClient();
    const response = await client.request(`${gw1}/bff/login/oidc?return_to=/%23/admin`);
    expect(response.status).toBe(303);
    const location = new URL(response.headers.get('location') ?? '');
    expect(`${location.origin}${location.pathname}`).toBe(`${idp}/auth`);
    const params = Object.fromEntries(location.searchParams);
    expect(params).toMatchObject({
      client_id: GATEWAY_CLIENT_ID,
      response_type: 'code',
      redirect_uri: `${gw1}/bff/callback`,
      code_challenge_method: 'S256',
      scope: 'openid profile',
    });
    for (const name of ['state', 'nonce', 'code_challenge'])
      expect(params[name]).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const flowCookie = response.headers
      .getSetCookie()
      .find((line) => line.startsWith('__Host-oidc-flow='));
    const attributes = flowCookie
      ?.split(';')
      .slice(1)
      .map((part) => part.trim())
      .sort();
    expect(attributes).toEqual(['HttpOnly', 'Max-Age=600', 'Path=/', 'SameSite=Lax', 'Secure']);
    expect(response.headers.get('cache-control')).toBe('no-store');
  });

  it("signs in at the first gateway through the provider's login form; the proxied API accepts the session", async () => {
    const browser = new BrowserClient();
    const wrong = await browser.navigate(`${gw1}/bff/login/oidc?return_to=/`);
    const [loginForm] = parseForms(wrong.text, wrong.url);
    expect(new URL(wrong.url).origin).toBe(idp);
    expect(wrong.text).toContain('<label for="username">Username</label>');
    const refused = await browser.submit(loginForm!, { username: 'alice', password: 'nope' });
    expect(refused.status).toBe(200);
    expect(refused.text).toContain('Wrong username or password.');

    const [again] = parseForms(refused.text, refused.url);
    const page = await browser.submit(again!, ALICE);
    expect(page.url).toBe(`${gw1}/`);
    expect(page.status).toBe(200);
    // The callback ended with a page of the gateway's own, which moved on to return_to.
    expect(page.visited.some((url) => url.startsWith(`${gw1}/bff/callback?`))).toBe(true);
    expect(browser.cookie(hostOf(gw1), '__Host-session')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(browser.cookie(hostOf(gw1), '__Host-oidc-flow')).toBeUndefined();

    const session = await consoleCall(browser, gw1, 'GET', '/bff/session');
    expect(session.status).toBe(200);
    const user = session.json.user as { sub: string; roles: string[] };
    expect(user.sub).toMatch(/^oidc-/);
    expect(user.roles).toEqual(['user']);
    expect((await consoleCall(browser, gw1, 'GET', '/api/content/articles')).status).toBe(200);
  });

  it("signs in silently at the second gateway (another origin) through the provider's SSO session", async () => {
    const browser = new BrowserClient();
    const first = await signInThroughProvider(
      browser,
      `${gw1}/bff/login/oidc?return_to=/`,
      idp,
      ALICE,
    );
    expect(first.loginForms).toBe(1);
    const second = await signInThroughProvider(
      browser,
      `${gw2}/bff/login/oidc?return_to=/`,
      idp,
      ALICE,
    );
    expect(second.loginForms).toBe(0);
    expect(second.url).toBe(`${gw2}/`);
    // Its own cookie, at its own origin.
    const cookie1 = browser.cookie(hostOf(gw1), '__Host-session');
    const cookie2 = browser.cookie(hostOf(gw2), '__Host-session');
    expect(cookie2).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(cookie2).not.toBe(cookie1);
    const one = await consoleCall(browser, gw1, 'GET', '/bff/session');
    const two = await consoleCall(browser, gw2, 'GET', '/bff/session');
    expect((two.json.user as { sub: string }).sub).toBe((one.json.user as { sub: string }).sub);
    expect(two.json.session_id).not.toBe(one.json.session_id);
    expect((await consoleCall(browser, gw2, 'GET', '/api/content/articles')).status).toBe(200);
  });

  it("gives the provider's admin the admin role", async () => {
    const browser = new BrowserClient();
    await signInThroughProvider(browser, `${gw1}/bff/login/oidc?return_to=/`, idp, ADMIN);
    const session = await consoleCall(browser, gw1, 'GET', '/bff/session');
    expect((session.json.user as { roles: string[] }).roles).toEqual(['user', 'admin']);
  });

  it('answers the logout of a provider session with an end-session URL that works at the provider', async () => {
    const browser = new BrowserClient();
    await signInThroughProvider(browser, `${gw1}/bff/login/oidc?return_to=/`, idp, ALICE);
    const before = logoutTokens.length;

    const logout = await consoleCall(browser, gw1, 'POST', '/bff/logout');
    expect(logout.status).toBe(200);
    const endSession = new URL(String(logout.json.end_session_url));
    expect(`${endSession.origin}${endSession.pathname}`).toBe(`${idp}/session/end`);
    expect(endSession.searchParams.get('post_logout_redirect_uri')).toBe(`${gw1}/`);
    const hint = decodeJwt(endSession.searchParams.get('id_token_hint') ?? '');
    expect(hint).toMatchObject({ iss: idp, aud: GATEWAY_CLIENT_ID, sid: expect.any(String) });
    expect(browser.cookie(hostOf(gw1), '__Host-session')).toBeUndefined();
    expect((await consoleCall(browser, gw1, 'GET', '/bff/session')).status).toBe(401);

    // The provider asks to confirm; yes signs out of it and of every app signed in with it.
    const confirm = await browser.navigate(endSession.href);
    expect(confirm.status).toBe(200);
    const [form] = parseForms(confirm.text, confirm.url);
    expect(form?.fields.xsrf).toEqual(expect.any(String));
    const back = await browser.submit(form!, { logout: 'yes' });
    expect(back.url).toBe(`${gw1}/`);

    // Back-Channel Logout 1.0: one logout token for the gateway client, with the ID token's sid.
    expect(logoutTokens.length).toBe(before + 1);
    const token = logoutTokens.at(-1) ?? '';
    expect(decodeProtectedHeader(token).typ).toBe('logout+jwt');
    expect(decodeJwt(token)).toMatchObject({
      iss: idp,
      aud: GATEWAY_CLIENT_ID,
      sub: hint.sub,
      sid: hint.sid,
      events: { 'http://schemas.openid.net/event/backchannel-logout': {} },
    });
    expect(decodeJwt(token).nonce).toBeUndefined();

    // The provider's session is over: the next sign-in shows its login form again.
    const again = await signInThroughProvider(
      browser,
      `${gw1}/bff/login/oidc?return_to=/`,
      idp,
      ALICE,
    );
    expect(again.loginForms).toBe(1);
  });

  it('refuses a callback without its flow cookie, with a wrong state, or used twice', async () => {
    const stranger = new BrowserClient();
    const noFlow = await stranger.navigate(`${gw1}/bff/callback?code=abc&state=xyz`);
    expect(ssoError(noFlow)).toBe('flow_missing');
    expect(noFlow.status).toBe(200);

    const browser = new BrowserClient();
    const start = await browser.request(`${gw1}/bff/login/oidc?return_to=/`);
    const state = new URL(start.headers.get('location') ?? '').searchParams.get('state');
    const forged = await browser.request(`${gw1}/bff/callback?code=abc&state=not-${state}`);
    expect(forged.status).toBe(303);
    expect(forged.headers.get('location')).toBe('/?sso_error=state_mismatch');
    expect(browser.cookie(hostOf(gw1), '__Host-session')).toBeUndefined();
    // The flow is used up: its right state no longer works either.
    const late = await browser.request(`${gw1}/bff/callback?code=abc&state=${state}`);
    expect(late.headers.get('location')).toBe('/?sso_error=flow_missing');

    // A flow cookie the gateway never issued (or whose flow expired).
    const replay = new BrowserClient();
    await replay.request(`${gw1}/bff/login/oidc?return_to=/`);
    const flow = replay.cookie(hostOf(gw1), '__Host-oidc-flow') ?? '';
    const unknown = await fetch(`${gw1}/bff/callback?code=abc&state=${state}`, {
      redirect: 'manual',
      headers: { cookie: `__Host-oidc-flow=${flow.slice(0, -4)}AAAA` },
    });
    expect(unknown.headers.get('location')).toBe('/?sso_error=flow_expired');
  });

  it('refuses a return_to that is not a path of this origin', async () => {
    for (const returnTo of [
      'https://evil.example/',
      '//evil.example/x',
      '/\\evil.example',
      'javascript:alert(1)',
      '/"><script>',
    ]) {
      const response = await fetch(
        `${gw1}/bff/login/oidc?return_to=${encodeURIComponent(returnTo)}`,
        { redirect: 'manual' },
      );
      expect({ returnTo, status: response.status }).toEqual({ returnTo, status: 400 });
      expect(await response.json()).toMatchObject({ error: 'invalid_request' });
      expect(response.headers.getSetCookie()).toEqual([]);
    }
  });

  it('ends at the console with access_denied when the user cancels at the provider', async () => {
    const browser = new BrowserClient();
    const login = await browser.navigate(`${gw1}/bff/login/oidc?return_to=/`);
    const cancel = parseForms(login.text, login.url).find((form) => form.action.endsWith('/abort'));
    const back = await browser.submit(cancel!);
    expect(back.url).toBe(`${gw1}/?sso_error=access_denied`);
    expect(back.status).toBe(200);
    expect(browser.cookie(hostOf(gw1), '__Host-session')).toBeUndefined();
  });
});
