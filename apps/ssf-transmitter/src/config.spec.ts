import { ssfEnv } from './config';

const clients = JSON.stringify([{ client_id: 'rp', token: 'a-token-of-sixteen+' }]);
const ecKey = JSON.stringify({
  kty: 'EC',
  crv: 'P-256',
  x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU',
  y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0',
  d: 'jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI',
});
const errors = (env: Record<string, string>) => {
  const result = ssfEnv.safeParse(env);
  return result.success ? [] : result.error.issues.map((issue) => issue.path.join('.'));
};

describe('ssfEnv', () => {
  it('has working defaults', () => {
    const env = ssfEnv.parse({ SSF_CLIENTS: clients, SSF_ISSUER: 'https://ssf.example/' });
    expect(env).toMatchObject({
      HTTP_PORT: 3500,
      SSF_ISSUER: 'https://ssf.example',
      SSF_CLIENTS: [{ client_id: 'rp', token: 'a-token-of-sixteen+' }],
      SSF_DEFAULT_SUBJECTS: 'ALL',
      SSF_PUSH_TIMEOUT_MS: 5_000,
      SSF_PUSH_MAX_BACKOFF_MS: 60_000,
      SSF_KEY_PREFIX: 'ssf:',
      REVOCATION_TOPIC: 'session-revocations.v1',
    });
    expect(env.SSF_SIGNING_KEY).toBeUndefined();
  });

  it('refuses malformed or ambiguous clients, and none in production', () => {
    expect(errors({})).toEqual([]); // none: management refused, discovery still served
    expect(errors({ NODE_ENV: 'production', SSF_CLIENTS: '[]' })).toContain('SSF_CLIENTS');
    expect(errors({ SSF_CLIENTS: 'nope' })).toContain('SSF_CLIENTS');
    expect(errors({ SSF_CLIENTS: '[{"client_id":"rp","token":"short"}]' })).toContain(
      'SSF_CLIENTS.0.token',
    );
    const twice = JSON.stringify([
      { client_id: 'a', token: 'the-same-token-here' },
      { client_id: 'b', token: 'the-same-token-here' },
    ]);
    expect(errors({ SSF_CLIENTS: twice })).toContain('SSF_CLIENTS');
  });

  it('takes an EC P-256 private JWK and refuses a public one', () => {
    expect(errors({ SSF_CLIENTS: clients, SSF_SIGNING_KEY: ecKey })).toEqual([]);
    const publicKey = JSON.parse(ecKey) as Record<string, string>;
    delete publicKey.d;
    expect(errors({ SSF_CLIENTS: clients, SSF_SIGNING_KEY: JSON.stringify(publicKey) })).toContain(
      'SSF_SIGNING_KEY.d',
    );
  });

  it('refuses to run in production without a signing key or over http', () => {
    const production = { NODE_ENV: 'production', SSF_CLIENTS: clients };
    expect(errors({ ...production, SSF_ISSUER: 'https://ssf.example' })).toEqual([
      'SSF_SIGNING_KEY',
    ]);
    expect(
      errors({ ...production, SSF_ISSUER: 'http://ssf.example', SSF_SIGNING_KEY: ecKey }),
    ).toEqual(['SSF_ISSUER']);
    expect(
      errors({ ...production, SSF_ISSUER: 'https://ssf.example', SSF_SIGNING_KEY: ecKey }),
    ).toEqual([]);
  });
});
