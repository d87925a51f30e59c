import { validateEnv } from '@app/config';
import { tokensEnv } from './tokens.env';

describe('tokensEnv', () => {
  const validate = validateEnv(tokensEnv);

  it('has defaults for everything but the keys', () => {
    expect(validate({})).toEqual({
      ISSUER: 'http://127.0.0.1:3000',
      ACCESS_TOKEN_AUDIENCE: ['session-revocation-apis'],
      ACCESS_TOKEN_TTL_SECONDS: 300,
    });
  });

  it('refuses an issuer that is not a bare http(s) URL, and a lifetime that is not positive', () => {
    for (const ISSUER of ['sessions.example', 'https://a.example/', 'https://a.example?x=1'])
      expect(() => validate({ ISSUER })).toThrow(/ISSUER/);
    expect(() => validate({ ACCESS_TOKEN_TTL_SECONDS: '0' })).toThrow(/ACCESS_TOKEN_TTL_SECONDS/);
    expect(validate({ ISSUER: 'https://a.example/sso' }).ISSUER).toBe('https://a.example/sso');
  });

  // Its value would be echoed by the validation error: the keys are checked by loadSigningKeys.
  it('takes SIGNING_KEYS as any text', () => {
    expect(validate({ SIGNING_KEYS: 'not json' }).SIGNING_KEYS).toBe('not json');
  });
});
