import { sessionAppPerFile } from './session-app';

// RFC 7009 (revocation) and RFC 7662 (introspection) as the RFCs define them: form-encoded
// bodies, client_secret_basic and client_secret_post, 401 invalid_client for any bad client
// authentication (a malformed Basic header included), and issuer metadata that says so.

const CLIENT = { client_id: 'gateway', client_secret: 'gateway-secret-0123456789' };

describe('OAuth token endpoints (RFC 7009, RFC 7662)', () => {
  const file = sessionAppPerFile({ OAUTH_CLIENTS: JSON.stringify([CLIENT]) });

  const form = (fields: Record<string, string>, headers: Record<string, string> = {}) => ({
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(fields).toString(),
  });
  const basic = (id: string, secret: string) =>
    `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
  const post = async (path: string, init: RequestInit) => {
    const response = await fetch(`${file.app.url}${path}`, init);
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  const signIn = async () =>
    (
      await file.call('POST', '/auth/login', {
        body: { username: 'alice', password: 'alice-pass', device: { name: 'phone' } },
      })
    ).body;

  it('introspects a form-encoded request with client_secret_basic and with client_secret_post', async () => {
    const { access_token } = await signIn();
    const byBasic = await post(
      '/oauth/introspect',
      form(
        { token: String(access_token), token_type_hint: 'access_token' },
        {
          authorization: basic(CLIENT.client_id, CLIENT.client_secret),
        },
      ),
    );
    expect(byBasic).toMatchObject({ status: 200, body: { active: true, sub: 'alice' } });
    const byPost = await post(
      '/oauth/introspect',
      form({ token: String(access_token), ...CLIENT }),
    );
    expect(byPost).toMatchObject({ status: 200, body: { active: true, client_id: 'gateway' } });
  });

  it('revokes a form-encoded request (RFC 7009): 200, and the session is over', async () => {
    const { access_token, refresh_token } = await signIn();
    const revoked = await post('/oauth/revoke', form({ token: String(refresh_token), ...CLIENT }));
    expect(revoked.status).toBe(200);
    const after = await post('/oauth/introspect', form({ token: String(access_token), ...CLIENT }));
    expect(after.body).toEqual({ active: false });
  });

  it.each([
    ['a malformed Basic header', { authorization: 'Basic !!!not-base64' }, {}],
    [
      'Basic credentials with broken percent-encoding',
      { authorization: `Basic ${Buffer.from('%zz:x').toString('base64')}` },
      {},
    ],
    [
      'Basic credentials with no colon',
      { authorization: `Basic ${Buffer.from('gateway').toString('base64')}` },
      {},
    ],
    ['a wrong secret', { authorization: basic('gateway', 'wrong-secret-0123456789') }, {}],
    ['an unknown client in the body', {}, { client_id: 'nobody', client_secret: 'x' }],
    [
      'two methods at once',
      { authorization: basic(CLIENT.client_id, CLIENT.client_secret) },
      CLIENT,
    ],
  ])('%s: 401 invalid_client with a Basic challenge', async (_, headers, fields) => {
    const answer = await fetch(
      `${file.app.url}/oauth/introspect`,
      form({ token: 'x', ...fields }, headers),
    );
    expect(answer.status).toBe(401);
    expect(((await answer.json()) as { error: string }).error).toBe('invalid_client');
    expect(answer.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
  });

  it('a form body without the token: 400 naming it', async () => {
    const answer = await post('/oauth/introspect', form({ ...CLIENT }));
    expect(answer).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
  });

  it('the issuer metadata lists the endpoints and how clients authenticate there', async () => {
    const { body } = await file.call('GET', '/.well-known/openid-configuration');
    expect(body).toMatchObject({
      revocation_endpoint: expect.stringMatching(/\/oauth\/revoke$/),
      introspection_endpoint: expect.stringMatching(/\/oauth\/introspect$/),
      revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    });
  });
});
