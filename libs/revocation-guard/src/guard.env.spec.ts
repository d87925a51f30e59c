import { httpEnv, validateEnv } from '@app/config';
import { revocationGuardEnv, revocationGuardEnvRules } from './guard.env';

describe('the guard environment', () => {
  const validate = validateEnv(
    httpEnv(3100).extend(revocationGuardEnv.shape).superRefine(revocationGuardEnvRules),
  );

  it('fetches keys over https, or plain http on loopback only', () => {
    expect(validate({ JWKS_URL: 'https://sso.example.com/jwks' }).JWKS_URL).toBe(
      'https://sso.example.com/jwks',
    );
    expect(validate({ JWKS_URL: 'http://127.0.0.1:3000/.well-known/jwks.json' }).JWKS_URL).toBe(
      'http://127.0.0.1:3000/.well-known/jwks.json',
    );
    expect(() => validate({ JWKS_URL: 'http://sessions.internal/jwks' })).toThrow(
      /JWKS_URL: must be https/,
    );
    expect(
      validate({ JWKS_URL: 'http://session-service:3000/jwks', ALLOW_INSECURE_HTTP: 'true' })
        .JWKS_URL,
    ).toBe('http://session-service:3000/jwks');
  });

  it('takes several audiences, and SASL only with its credentials', () => {
    expect(validate({ TOKEN_AUDIENCE: 'content-apis, billing' }).TOKEN_AUDIENCE).toEqual([
      'content-apis',
      'billing',
    ]);
    expect(() => validate({ KAFKA_SASL_MECHANISM: 'scram-sha-512' })).toThrow(
      /KAFKA_SASL_USERNAME[\s\S]*KAFKA_SASL_PASSWORD/,
    );
  });
});
