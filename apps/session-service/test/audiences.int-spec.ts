import { decodeJwt } from 'jose';
import { sessionAppPerFile } from './session-app';

// Per-resource audiences: tokens carry the audiences configured for them, and the session
// service's own routes (the admin API among them) accept only tokens addressed to it. A token
// minted for the content APIs alone is refused there.

describe('access-token audiences (real Redis)', () => {
  // Every token is for the content APIs only; this service calls itself "session-service".
  const file = sessionAppPerFile({
    ACCESS_TOKEN_AUDIENCE: 'content-apis',
    SESSION_SERVICE_AUDIENCE: 'session-service',
  });

  it('a token minted for the content APIs is refused by the admin API', async () => {
    const { body } = await file.call('POST', '/auth/login', {
      body: { username: 'admin', password: 'admin-pass', device: { name: 'console' } },
    });
    const token = String(body.access_token);
    expect(decodeJwt(token).aud).toBe('content-apis');
    const answer = await file.call('GET', '/admin/users/alice/sessions', { token });
    expect(answer.status).toBe(401);
    expect(answer.headers.get('www-authenticate')).toMatch(/wrong audience/);
  });
});
