import { startOidcIssuer, type TestOidcIssuer } from '@app/testing';
import { client, startSessionApp, type SessionApp } from './session-app';

// An ID token opens at most one session: it must be fresh, it is remembered until it expires
// and refused a second time, and an issuer configured to require a nonce gets no session
// without one.

describe('OpenID Connect sign-in: replayed and stale ID tokens (real Redis)', () => {
  let issuer: TestOidcIssuer;
  let strict: TestOidcIssuer;
  let app: SessionApp;
  let call: ReturnType<typeof client>;
  const device = { name: 'phone' };
  const signIn = (idToken: string, nonce?: string) =>
    call('POST', '/auth/oidc', {
      body: { id_token: idToken, device, ...(nonce === undefined ? {} : { nonce }) },
    });

  beforeAll(async () => {
    [issuer, strict] = await Promise.all([startOidcIssuer(), startOidcIssuer()]);
    app = await startSessionApp({
      OIDC_ISSUERS: JSON.stringify([
        { issuer: issuer.issuer, jwks_uri: issuer.jwksUri, audience: issuer.audience },
        {
          issuer: strict.issuer,
          jwks_uri: strict.jwksUri,
          audience: strict.audience,
          require_nonce: true,
        },
      ]),
    });
    call = client(app);
  });

  afterAll(async () => {
    await app.close();
    await Promise.all([issuer.stop(), strict.stop()]);
  });

  it('one ID token opens one session; a second use is refused, even concurrently', async () => {
    const idToken = await issuer.sign({ sub: 'ext-1', jti: 'id-token-1' });
    expect((await signIn(idToken)).status).toBe(200);
    const again = await signIn(idToken);
    expect(again.status).toBe(401);
    expect(again.body).toMatchObject({ error: 'invalid_id_token' });

    const racing = await issuer.sign({ sub: 'ext-2' }); // no jti: remembered by its hash
    const statuses = (await Promise.all(Array.from({ length: 10 }, () => signIn(racing)))).map(
      (answer) => answer.status,
    );
    expect(statuses.filter((status) => status === 200)).toHaveLength(1);
    expect(statuses.filter((status) => status === 401)).toHaveLength(9);
  });

  it('refuses an ID token issued more than 5 minutes ago, though not expired', async () => {
    const iat = Math.floor(Date.now() / 1000) - 6 * 60;
    const old = await issuer.sign({ sub: 'ext-3', iat, exp: iat + 3600 });
    const answer = await signIn(old);
    expect(answer.status).toBe(401);
    expect(answer.body).toMatchObject({ error: 'invalid_id_token' });
  });

  it('an issuer that requires a nonce: refused without one, accepted with the right one', async () => {
    const withoutNonce = await signIn(await strict.sign({ sub: 'ext-4' }));
    expect(withoutNonce.status).toBe(401);
    const tokenWithNonce = await strict.sign({ sub: 'ext-4' }, { nonce: 'n-42' });
    expect((await signIn(tokenWithNonce)).status).toBe(401); // nonce in the token, not sent
    expect(
      (await signIn(await strict.sign({ sub: 'ext-4' }, { nonce: 'n-43' }), 'n-43')).status,
    ).toBe(200);
  });
});
