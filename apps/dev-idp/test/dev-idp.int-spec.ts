// The dev OpenID provider as a process (dist/apps/dev-idp): never in production; its discovery
// document; PKCE required; a third-party client gets the consent page, a first-party one none.
import { BrowserClient, parseForms, type Page } from '@app/testing';
import { decodeJwt } from 'jose';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { freePort } from '../../../scripts/lib/process.ts';
import { root, startApp, type AppHandle } from '../../../scripts/system.ts';

const MAIN = join(root, 'dist', 'apps', 'dev-idp', 'src', 'main.js');
const SECRET = randomBytes(24).toString('base64url');
const APP = 'http://127.0.0.1:9/app';

let idp: AppHandle;

beforeAll(async () => {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const client = (client_id: string, extra: Record<string, unknown> = {}) => ({
    client_id,
    client_secret: SECRET,
    redirect_uris: [`${APP}/callback`],
    post_logout_redirect_uris: [`${APP}/`],
    ...extra,
  });
  idp = await startApp({
    name: 'dev-idp',
    port,
    env: {
      DEV_IDP_ISSUER: issuer,
      DEV_IDP_CLIENTS: JSON.stringify([
        client('own'),
        client('partner', { first_party: false, client_name: 'Partner app' }),
      ]),
    },
  });
});

afterAll(async () => {
  await (idp as AppHandle | undefined)?.stop(5_000);
});

/** An authorization request of `clientId`, with PKCE unless `pkce` is false. */
function authorize(clientId: string, { pkce = true } = {}) {
  const verifier = randomBytes(32).toString('base64url');
  const nonce = randomBytes(16).toString('base64url');
  const params = new URLSearchParams({
    client_id: clientId,
    response_type: 'code',
    scope: 'openid profile',
    redirect_uri: `${APP}/callback`,
    state: randomBytes(16).toString('base64url'),
    nonce,
    ...(pkce && {
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
    }),
  });
  return { url: `${idp.url}/auth?${params.toString()}`, verifier, nonce };
}
const authorizeUrl = (clientId: string, options?: { pkce?: boolean }) =>
  authorize(clientId, options).url;

/** Follows the provider's pages until it sends the browser back to the (unreachable) app. */
async function untilBackAtApp(client: BrowserClient, url: string): Promise<Response> {
  let next = url;
  for (let hop = 0; hop < 10; hop += 1) {
    const response = await client.request(next);
    const location = response.headers.get('location');
    await response.body?.cancel();
    if (location === null) throw new Error(`no redirect from ${next} (${response.status})`);
    const target = new URL(location, next).href;
    if (target.startsWith(APP)) return response;
    next = target;
  }
  throw new Error('too many redirects');
}

describe('dev OpenID provider', () => {
  it('refuses to start with NODE_ENV=production', async () => {
    const child = spawn(process.execPath, [MAIN], {
      env: { ...process.env, NODE_ENV: 'production', HTTP_PORT: String(await freePort()) },
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(1);
    expect(stderr).toContain('never runs with NODE_ENV=production');
  });

  it('publishes discovery with back-channel logout, end-session, PKCE S256 and its JWKS', async () => {
    const discovery = (await (
      await fetch(`${idp.url}/.well-known/openid-configuration`)
    ).json()) as Record<string, unknown>;
    expect(discovery).toMatchObject({
      issuer: idp.url,
      jwks_uri: `${idp.url}/jwks`,
      end_session_endpoint: `${idp.url}/session/end`,
      backchannel_logout_supported: true,
      backchannel_logout_session_supported: true,
      code_challenge_methods_supported: ['S256'],
    });
    expect(discovery.claims_supported).toEqual(
      expect.arrayContaining(['sub', 'roles', 'preferred_username', 'sid']),
    );
    const jwks = (await (await fetch(`${idp.url}/jwks`)).json()) as { keys: { d?: string }[] };
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]?.d).toBeUndefined();
    expect((await fetch(`${idp.url}/health/ready`)).status).toBe(200);
  });

  it('requires PKCE', async () => {
    const response = await new BrowserClient().request(authorizeUrl('own', { pkce: false }));
    const location = new URL(response.headers.get('location') ?? '');
    expect(location.href.startsWith(`${APP}/callback`)).toBe(true);
    expect(location.searchParams.get('error')).toBe('invalid_request');
    expect(location.searchParams.get('error_description')).toMatch(/requires PKCE/);
  });

  it('shows a third-party client the consent page after the login page; a first-party one signs in without it', async () => {
    const browser = new BrowserClient();
    const login: Page = await browser.navigate(authorizeUrl('partner')).catch(() => {
      throw new Error('the provider did not show its login page');
    });
    expect(login.text).toContain('Partner app');
    const [form] = parseForms(login.text, login.url);
    const consent = await browser.submit(form!, { username: 'bob', password: 'bob-pass' });
    expect(consent.text).toContain('<h1>Allow access</h1>');
    expect(consent.text).toContain('signed in as <strong>bob</strong>');
    const [allow] = parseForms(consent.text, consent.url);
    expect(allow?.action).toMatch(/\/confirm$/);

    // The first-party client of the same browser: no login form (SSO), no consent page.
    const back = await untilBackAtApp(browser, authorizeUrl('own'));
    expect(new URL(back.headers.get('location') ?? '').searchParams.get('code')).toBeTruthy();
  });

  it('says so when the password is wrong; its ID token names the user and their roles', async () => {
    const browser = new BrowserClient();
    const flow = authorize('own');
    const login = await browser.navigate(flow.url);
    const [form] = parseForms(login.text, login.url);
    const wrong = await browser.submit(form!, { username: 'admin', password: 'alice-pass' });
    expect(wrong.text).toContain('role="alert"');
    expect(wrong.text).toContain('Wrong username or password.');

    const [again] = parseForms(wrong.text, wrong.url);
    const signedIn = await browser.request(again!.action, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ ...again!.fields, username: 'admin', password: 'admin-pass' }),
    });
    const resume = new URL(signedIn.headers.get('location') ?? '', again!.action).href;
    const back = await untilBackAtApp(browser, resume);
    const code = new URL(back.headers.get('location') ?? '').searchParams.get('code') ?? '';
    const token = await fetch(`${idp.url}/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`own:${SECRET}`).toString('base64')}`,
      },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        redirect_uri: `${APP}/callback`,
        code_verifier: flow.verifier,
      }),
    });
    expect(token.status).toBe(200);
    const { id_token } = (await token.json()) as { id_token: string };
    expect(decodeJwt(id_token)).toMatchObject({
      iss: idp.url,
      aud: 'own',
      sub: 'admin',
      preferred_username: 'admin',
      roles: ['user', 'admin'],
      nonce: flow.nonce,
    });
  });
});
