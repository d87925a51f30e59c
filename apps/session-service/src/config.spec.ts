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
});
