import { ConfigService } from '@nestjs/config';
import { startOidcIssuer, type TestOidcIssuer } from '@app/testing';
import { generateKeyPair, SignJWT } from 'jose';
import type { IdentityEnv, OidcIssuerConfig } from './identity.env';
import {
  BACKCHANNEL_LOGOUT_EVENT,
  InvalidLogoutTokenError,
  LogoutTokenVerifier,
  type LogoutTokenRejection,
} from './logout-token-verifier';
import { OidcVerifier } from './oidc-verifier';
import { TrustedIssuers } from './trusted-issuers';

// OpenID Connect Back-Channel Logout 1.0 §2.6, against a real (local, in-process) issuer: JWKS
// over HTTP, ES256 logout tokens.

let idp: TestOidcIssuer;
let other: TestOidcIssuer;
let config: OidcIssuerConfig;
let verifier: LogoutTokenVerifier;

const settings = (issuers: OidcIssuerConfig[]) =>
  new ConfigService<IdentityEnv, true>({ OIDC_ISSUERS: issuers });

async function expectRejected(token: string, reason: LogoutTokenRejection, by = verifier) {
  const error = await by.verify(token).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(InvalidLogoutTokenError);
  expect((error as InvalidLogoutTokenError).reason).toBe(reason);
  // Short fixed reasons: never the token, never a claim's value.
  expect((error as Error).message).not.toContain(token.slice(0, 20));
  expect((error as Error).message).not.toMatch(/sid-1|user-1|secret-value/);
}

beforeAll(async () => {
  [idp, other] = await Promise.all([startOidcIssuer(), startOidcIssuer()]);
  config = { issuer: idp.issuer, jwks_uri: idp.jwksUri, audience: idp.audience };
  verifier = new LogoutTokenVerifier(settings([config]));
});

afterAll(async () => {
  await Promise.all([idp.stop(), other.stop()]);
});

describe('LogoutTokenVerifier', () => {
  it('accepts a valid logout token with sid, with sub, with both; typ logout+jwt or none', async () => {
    const withSid = await verifier.verify(await idp.signLogoutToken({ sid: 'sid-1' }));
    expect(withSid).toMatchObject({ issuer: idp.issuer, sid: 'sid-1' });
    expect(withSid.sub).toBeUndefined();
    expect(withSid.jti).toEqual(expect.any(String));
    // Remembered until the token's exp (2 minutes) plus the 5 s tolerance.
    expect(withSid.replayUntil).toBeGreaterThan(Date.now() + 120_000);
    expect(withSid.replayUntil).toBeLessThanOrEqual(Date.now() + 126_000);

    await expect(verifier.verify(await idp.signLogoutToken({ sub: 'user-1' }))).resolves.toEqual(
      expect.objectContaining({ sub: 'user-1' }),
    );
    await expect(
      verifier.verify(await idp.signLogoutToken({ sub: 'user-1', sid: 'sid-1' }, { typ: null })),
    ).resolves.toMatchObject({ sub: 'user-1', sid: 'sid-1' });
    await expect(
      verifier.verify(
        await idp.signLogoutToken({ sid: 'sid-1' }, { typ: 'application/logout+jwt' }),
      ),
    ).resolves.toMatchObject({ sid: 'sid-1' });
  });

  it('takes logout tokens for any of several client ids of ours at one issuer', async () => {
    const both = new LogoutTokenVerifier(
      settings([{ ...config, audience: [idp.audience, 'second-gateway'] }]),
    );
    for (const aud of [idp.audience, 'second-gateway'])
      await expect(
        both.verify(await idp.signLogoutToken({ sid: 'sid-1', aud })),
      ).resolves.toMatchObject({ sid: 'sid-1' });
    await expectRejected(
      await idp.signLogoutToken({ sid: 'sid-1', aud: 'someone-else' }),
      'wrong_audience',
      both,
    );
  });

  it('accepts an events member whose value has members of its own', async () => {
    const token = await idp.signLogoutToken({
      sid: 'sid-1',
      events: { [BACKCHANNEL_LOGOUT_EVENT]: { note: 'x' }, 'https://other.example/e': {} },
    });
    await expect(verifier.verify(token)).resolves.toMatchObject({ sid: 'sid-1' });
  });

  it.each<[string, () => Promise<string>, LogoutTokenRejection]>([
    ['an untrusted iss', () => other.signLogoutToken({ sid: 'sid-1' }), 'untrusted_issuer'],
    ['another aud', () => idp.signLogoutToken({ sid: 'sid-1', aud: 'another' }), 'wrong_audience'],
    [
      'an expired token',
      () => idp.signLogoutToken({ sid: 'sid-1' }, { expiresIn: -60 }),
      'expired',
    ],
    ['a nonce', () => idp.signLogoutToken({ sid: 'sid-1' }, { nonce: 'n' }), 'nonce_present'],
    ['no events', () => idp.signLogoutToken({ sid: 'sid-1', events: undefined }), 'missing_event'],
    [
      'another event URI',
      () =>
        idp.signLogoutToken({
          sid: 'sid-1',
          events: { 'http://schemas.openid.net/event/other': {} },
        }),
      'missing_event',
    ],
    [
      'an event value that is not a JSON object',
      () => idp.signLogoutToken({ sid: 'sid-1', events: { [BACKCHANNEL_LOGOUT_EVENT]: 'yes' } }),
      'missing_event',
    ],
    [
      'an event value that is an array',
      () => idp.signLogoutToken({ sid: 'sid-1', events: { [BACKCHANNEL_LOGOUT_EVENT]: [] } }),
      'missing_event',
    ],
    ['neither sid nor sub', () => idp.signLogoutToken({}), 'missing_subject'],
    [
      'alg none',
      () => idp.signLogoutToken({ sid: 'sid-1' }, { alg: 'none' }),
      'algorithm_not_allowed',
    ],
    ['an unknown kid', () => idp.signLogoutToken({ sid: 'sid-1' }, { kid: 'nope' }), 'unknown_key'],
    ['typ JWT', () => idp.signLogoutToken({ sid: 'sid-1' }, { typ: 'JWT' }), 'wrong_type'],
    ['an ID token (typ JWT)', () => idp.sign({ sid: 'sid-1' }), 'wrong_type'],
    [
      'typ secevent+jwt',
      () => idp.signLogoutToken({ sid: 'sid-1' }, { typ: 'secevent+jwt' }),
      'wrong_type',
    ],
    ['no iat', () => idp.signLogoutToken({ sid: 'sid-1', iat: undefined }), 'invalid_claims'],
    ['no exp', () => idp.signLogoutToken({ sid: 'sid-1', exp: undefined }), 'invalid_claims'],
    ['no jti', () => idp.signLogoutToken({ sid: 'sid-1', jti: undefined }), 'invalid_claims'],
    [
      'a jti that is not a string',
      () => idp.signLogoutToken({ sid: 'sid-1', jti: 7 as unknown as string }),
      'invalid_claims',
    ],
    ['an empty sid', () => idp.signLogoutToken({ sid: '' }), 'invalid_claims'],
    ['a sid that is not a string', () => idp.signLogoutToken({ sid: 42 }), 'invalid_claims'],
    [
      'a sub of 256 characters',
      () => idp.signLogoutToken({ sub: 'u'.repeat(256) }),
      'invalid_claims',
    ],
  ])('refuses %s', async (_, make, reason) => {
    await expectRejected(await make(), reason);
  });

  it('refuses a token signed by another key under the issuer’s kid, and malformed tokens', async () => {
    const jwks = (await (await fetch(idp.jwksUri)).json()) as { keys: { kid: string }[] };
    const { privateKey } = await generateKeyPair('ES256');
    const forged = await new SignJWT({
      aud: idp.audience,
      sid: 'sid-1',
      jti: 'j',
      events: { [BACKCHANNEL_LOGOUT_EVENT]: {} },
    })
      .setProtectedHeader({ alg: 'ES256', kid: jwks.keys[0]!.kid, typ: 'logout+jwt' })
      .setIssuer(idp.issuer)
      .setIssuedAt()
      .setExpirationTime('2m')
      .sign(privateKey);
    await expectRejected(forged, 'bad_signature');
    await expectRejected('not.a.jwt', 'malformed');
    await expectRejected('secret-value', 'malformed');
    await expectRejected('x'.repeat(16_385), 'malformed');
  });

  it('refuses an HMAC token keyed with nothing the issuer publishes', async () => {
    const hs = await new SignJWT({
      aud: idp.audience,
      sid: 'sid-1',
      jti: 'j',
      events: { [BACKCHANNEL_LOGOUT_EVENT]: {} },
    })
      .setProtectedHeader({ alg: 'HS256', typ: 'logout+jwt' })
      .setIssuer(idp.issuer)
      .setIssuedAt()
      .setExpirationTime('2m')
      .sign(new TextEncoder().encode('k'.repeat(32)));
    await expectRejected(hs, 'algorithm_not_allowed');
  });

  it('says when the issuer’s keys cannot be fetched (the sender should retry)', async () => {
    const down = await startOidcIssuer();
    const token = await down.signLogoutToken({ sid: 'sid-1' });
    await down.stop();
    const byDown = new LogoutTokenVerifier(
      settings([{ issuer: down.issuer, jwks_uri: down.jwksUri, audience: down.audience }]),
    );
    await expectRejected(token, 'issuer_unavailable', byDown);
  });

  it('shares the issuers’ key sets with the ID-token verifier: one JWKS fetch for both', async () => {
    const fresh = await startOidcIssuer();
    const env = settings([
      { issuer: fresh.issuer, jwks_uri: fresh.jwksUri, audience: fresh.audience },
    ]);
    const issuers = new TrustedIssuers(env);
    const ids = new OidcVerifier(env, issuers);
    const logouts = new LogoutTokenVerifier(env, issuers);
    await ids.verify(await fresh.sign({ sub: 'user-1' }));
    await logouts.verify(await fresh.signLogoutToken({ sub: 'user-1' }));
    expect(fresh.jwksFetches).toBe(1);
    await fresh.stop();
  });
});
