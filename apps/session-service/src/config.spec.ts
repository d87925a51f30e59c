import { validateEnv } from '@app/config';
import { sessionServiceEnv } from './config';

describe('the session service environment', () => {
  const validate = validateEnv(sessionServiceEnv);
  const refusal = (env: Record<string, string>): string => {
    try {
      validate(env);
    } catch (error) {
      return (error as Error).message;
    }
    throw new Error('accepted');
  };

  it('names a bad secret variable without echoing its value', () => {
    const clients = JSON.stringify([{ client_id: 'gateway', client_secret: 'hunter2-short' }]);
    const message = refusal({ OAUTH_CLIENTS: clients });
    expect(message).toMatch(/OAUTH_CLIENTS/);
    expect(message).not.toContain('hunter2');
    const redis = refusal({ REDIS_URL: 'http://:hunter2@redis.internal:6379' });
    expect(redis).toMatch(/REDIS_URL/);
    expect(redis).not.toContain('hunter2');
  });

  it('still shows what an ordinary variable got', () => {
    expect(refusal({ HTTP_PORT: '70000' })).toContain('got "70000"');
  });

  it('publishes its issuer over https, or plain http on loopback only', () => {
    expect(refusal({ ISSUER: 'http://sessions.example.com' })).toMatch(/ISSUER: must be https/);
    expect(validate({ ISSUER: 'https://sessions.example.com' }).ISSUER).toBe(
      'https://sessions.example.com',
    );
    expect(
      validate({ ISSUER: 'http://session-service:3000', ALLOW_INSECURE_HTTP: 'true' }).ISSUER,
    ).toBe('http://session-service:3000');
  });

  it('trusts an OpenID provider over plain http only on loopback, or with ALLOW_INSECURE_HTTP', () => {
    const issuers = (base: string) =>
      JSON.stringify([{ issuer: base, jwks_uri: `${base}/jwks`, audience: 'gateway' }]);
    expect(refusal({ OIDC_ISSUERS: issuers('http://idp.example.com') })).toMatch(
      /OIDC_ISSUERS\.0\.issuer: must be https/,
    );
    expect(validate({ OIDC_ISSUERS: issuers('http://127.0.0.1:4000') }).OIDC_ISSUERS).toHaveLength(
      1,
    );
    // docker-compose: the dev provider on the compose network.
    const compose = { OIDC_ISSUERS: issuers('http://dev-idp.localhost:4000') };
    expect(refusal(compose)).toMatch(/must be https/);
    expect(validate({ ...compose, ALLOW_INSECURE_HTTP: 'true' }).OIDC_ISSUERS).toHaveLength(1);
  });
});
