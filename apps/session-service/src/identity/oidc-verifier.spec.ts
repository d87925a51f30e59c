import { ConfigService } from '@nestjs/config';
import { startOidcIssuer, type TestOidcIssuer } from '@app/testing';
import { generateKeyPair, SignJWT, UnsecuredJWT } from 'jose';
import type { IdentityEnv, OidcIssuerConfig } from './identity.env';
import { InvalidIdTokenError, OidcVerifier, type IdTokenRejection } from './oidc-verifier';
import { PasswordHasher } from './password-hasher';
import { oidcUserId, UserDirectory } from './user-directory';

// Against a real (local, in-process) issuer: discovery, JWKS over HTTP, ES256 ID tokens.

let idp: TestOidcIssuer;
let config: OidcIssuerConfig;

function verifierFor(issuers: OidcIssuerConfig[]) {
  return new ConfigService<IdentityEnv, true>({ OIDC_ISSUERS: issuers });
}

async function rejected(promise: Promise<unknown>): Promise<InvalidIdTokenError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(InvalidIdTokenError);
  return error as InvalidIdTokenError;
}

async function expectRejected(promise: Promise<unknown>, reason: IdTokenRejection, token?: string) {
  const error = await rejected(promise);
  expect(error.reason).toBe(reason);
  if (token) expect(error.message).not.toContain(token);
}

beforeAll(async () => {
  idp = await startOidcIssuer();
  config = {
    issuer: idp.issuer,
    jwks_uri: idp.jwksUri,
    audience: idp.audience,
    roles_claim: 'roles',
    admin_role: 'ops',
  };
});

afterAll(async () => {
  await idp.stop();
});

afterEach(() => {
  jest.useRealTimers();
});

describe('OidcVerifier', () => {
  it('accepts a valid ID token, which maps to a local user with roles', async () => {
    const settings = verifierFor([config]);
    const verifier = new OidcVerifier(settings);
    const token = await idp.sign(
      { sub: 'sub-42', roles: ['ops'], preferred_username: 'dana' },
      { nonce: 'n-1' },
    );

    const identity = await verifier.verify(token, 'n-1');
    expect(identity).toMatchObject({ issuer: idp.issuer, sub: 'sub-42' });
    expect(identity.claims.preferred_username).toBe('dana');

    const users = new UserDirectory(new PasswordHasher(), [], settings);
    expect(users.fromOidc(identity.issuer, identity.sub, identity.claims)).toEqual({
      id: oidcUserId(idp.issuer, 'sub-42'),
      username: 'dana',
      roles: ['user', 'admin'],
    });
  });

  it('publishes discovery metadata', async () => {
    const response = await fetch(`${idp.issuer}/.well-known/openid-configuration`);
    expect(await response.json()).toMatchObject({ issuer: idp.issuer, jwks_uri: idp.jwksUri });
  });

  it('refuses a token from an issuer not on the allow-list, without fetching anything', async () => {
    const verifier = new OidcVerifier(
      verifierFor([{ ...config, issuer: 'https://elsewhere.example.com' }]),
    );
    const before = idp.jwksFetches;
    const token = await idp.sign();
    await expectRejected(verifier.verify(token), 'untrusted_issuer', token);
    expect(idp.jwksFetches).toBe(before);
    await expectRejected(new OidcVerifier(verifierFor([])).verify(token), 'untrusted_issuer');
  });

  it('refuses a token for another audience', async () => {
    const verifier = new OidcVerifier(verifierFor([config]));
    await expectRejected(
      verifier.verify(await idp.sign({ aud: 'another-client' })),
      'wrong_audience',
    );
    // Several audiences: we must be the authorized party.
    const shared = await idp.sign({ aud: [idp.audience, 'another-client'] });
    await expectRejected(verifier.verify(shared), 'wrong_audience');
    const ours = await idp.sign({ aud: [idp.audience, 'another-client'], azp: idp.audience });
    await expect(verifier.verify(ours)).resolves.toMatchObject({ sub: 'user-1' });
  });

  it('takes several client ids of ours at one issuer (several gateways, each its own client)', async () => {
    const verifier = new OidcVerifier(
      verifierFor([{ ...config, audience: [idp.audience, 'second-gateway'] }]),
    );
    for (const aud of [idp.audience, 'second-gateway'])
      await expect(verifier.verify(await idp.sign({ aud }))).resolves.toMatchObject({
        sub: 'user-1',
      });
    await expectRejected(
      verifier.verify(await idp.sign({ aud: 'someone-else' })),
      'wrong_audience',
    );
    // Several audiences: the authorized party must be one of ours.
    const theirs = await idp.sign({ aud: ['second-gateway', 'x'], azp: 'x' });
    await expectRejected(verifier.verify(theirs), 'wrong_audience');
    const ours = await idp.sign({ aud: ['second-gateway', 'x'], azp: 'second-gateway' });
    await expect(verifier.verify(ours)).resolves.toMatchObject({ sub: 'user-1' });
  });

  it('refuses an expired token, with 5 s of clock tolerance', async () => {
    const verifier = new OidcVerifier(verifierFor([config]));
    await expectRejected(verifier.verify(await idp.sign({}, { expiresIn: -60 })), 'expired');
    await expect(verifier.verify(await idp.sign({}, { expiresIn: -2 }))).resolves.toBeDefined();
  });

  it('refuses a token signed by another key under the issuer’s kid', async () => {
    const verifier = new OidcVerifier(verifierFor([config]));
    const jwks = (await (await fetch(idp.jwksUri)).json()) as { keys: { kid: string }[] };
    const { privateKey } = await generateKeyPair('ES256');
    const forged = await new SignJWT({ sub: 'user-1', aud: idp.audience })
      .setProtectedHeader({ alg: 'ES256', kid: jwks.keys[0]!.kid })
      .setIssuer(idp.issuer)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(privateKey);
    await expectRejected(verifier.verify(forged), 'bad_signature', forged);
  });

  it('refuses a token without sub', async () => {
    const verifier = new OidcVerifier(verifierFor([config]));
    await expectRejected(verifier.verify(await idp.sign({ sub: undefined })), 'missing_sub');
    await expectRejected(verifier.verify(await idp.sign({ sub: '' })), 'missing_sub');
  });

  it('checks the nonce when the caller gives one', async () => {
    const verifier = new OidcVerifier(verifierFor([config]));
    const token = await idp.sign({}, { nonce: 'expected' });
    await expectRejected(verifier.verify(token, 'other'), 'nonce_mismatch');
    await expectRejected(verifier.verify(await idp.sign(), 'expected'), 'nonce_mismatch');
    await expect(verifier.verify(token)).resolves.toBeDefined();
  });

  it('refuses alg none and malformed tokens', async () => {
    const verifier = new OidcVerifier(verifierFor([config]));
    const unsecured = new UnsecuredJWT({ sub: 'user-1', aud: idp.audience })
      .setIssuer(idp.issuer)
      .setIssuedAt()
      .setExpirationTime('5m')
      .encode();
    await expectRejected(verifier.verify(unsecured), 'algorithm_not_allowed', unsecured);
    await expectRejected(verifier.verify('not.a.jwt'), 'malformed');
    await expectRejected(verifier.verify(''), 'malformed');
  });

  it('says when the issuer’s keys cannot be fetched, apart from a bad token', async () => {
    const down = await startOidcIssuer();
    const token = await down.sign();
    await down.stop();
    const verifier = new OidcVerifier(
      verifierFor([{ issuer: down.issuer, jwks_uri: down.jwksUri, audience: down.audience }]),
    );
    await expectRejected(verifier.verify(token), 'issuer_unavailable', token);
  });

  it('picks up a key rotation: an unknown kid refetches the JWKS once the cooldown is over', async () => {
    // Only Date is faked, so jose's 30 s refetch cooldown can pass without waiting for it.
    jest.useFakeTimers({
      doNotFake: [
        'nextTick',
        'setImmediate',
        'clearImmediate',
        'setTimeout',
        'clearTimeout',
        'setInterval',
        'clearInterval',
        'queueMicrotask',
        'hrtime',
        'performance',
      ],
    });
    const verifier = new OidcVerifier(verifierFor([config]));
    const before = idp.jwksFetches;
    await verifier.verify(await idp.sign());
    await verifier.verify(await idp.sign());
    expect(idp.jwksFetches).toBe(before + 1); // cached

    await idp.rotate();
    const rotated = await idp.sign();
    jest.setSystemTime(Date.now() + 31_000);
    await expect(verifier.verify(rotated)).resolves.toMatchObject({ sub: 'user-1' });
    expect(idp.jwksFetches).toBe(before + 2);

    // A kid the issuer never published: one refetch at most per cooldown, then refused.
    jest.setSystemTime(Date.now() + 31_000);
    await expectRejected(
      verifier.verify(await idp.sign({}, { kid: 'never-published' })),
      'unknown_key',
    );
    await expectRejected(
      verifier.verify(await idp.sign({}, { kid: 'never-published' })),
      'unknown_key',
    );
    expect(idp.jwksFetches).toBe(before + 3);
  });
});
