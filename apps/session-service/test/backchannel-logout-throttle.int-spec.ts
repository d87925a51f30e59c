import { startOidcIssuer, type TestOidcIssuer } from '@app/testing';
import { client, startSessionApp, type SessionApp } from './session-app';

// Back-channel logout is throttled on refused logout tokens only: an address that keeps
// sending bad ones is held off for a window (429), while valid tokens, however many, are never
// counted (a provider's mass logout must not be refused).

describe('back-channel logout throttling (real Redis)', () => {
  let idp: TestOidcIssuer;
  let app: SessionApp;
  let call: ReturnType<typeof client>;

  beforeAll(async () => {
    idp = await startOidcIssuer();
    app = await startSessionApp({
      RATE_LIMIT_PER_IP: '3',
      OIDC_ISSUERS: JSON.stringify([
        { issuer: idp.issuer, jwks_uri: idp.jwksUri, audience: idp.audience },
      ]),
    });
    call = client(app);
  });

  afterAll(async () => {
    await app.close();
    await idp.stop();
  });

  const logout = async (token: string) => {
    const response = await fetch(`${app.url}/oidc/backchannel-logout`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ logout_token: token }).toString(),
    });
    return { status: response.status, retryAfter: response.headers.get('retry-after') };
  };

  it('valid tokens are never throttled; refused ones are, after RATE_LIMIT_PER_IP a window', async () => {
    // Ten valid logout tokens (more than the limit of 3): one for a session of ours, the others
    // for provider sessions we never saw (valid, ending nothing). OIDC sign-ins are limited to
    // 3 here as well, hence one.
    const idToken = await idp.sign({ sub: 'user-1', sid: 'sid-0' });
    const signIn = await call('POST', '/auth/oidc', {
      body: { id_token: idToken, device: { name: 'phone' } },
    });
    expect(signIn.status).toBe(200);
    for (let i = 0; i < 10; i += 1) {
      expect((await logout(await idp.signLogoutToken({ sid: `sid-${i}` }))).status).toBe(200);
    }
    const ended = await call('GET', '/sessions', { token: String(signIn.body.access_token) });
    expect(ended.status).toBe(401);
    const bad = () => idp.signLogoutToken({ sid: 'sid-x' }, { typ: 'JWT' });
    for (let i = 0; i < 3; i += 1) expect((await logout(await bad())).status).toBe(400);
    const held = await logout(await idp.signLogoutToken({ sid: 'sid-y' }));
    expect(held.status).toBe(429);
    expect(Number(held.retryAfter)).toBeGreaterThan(0);
  });
});
