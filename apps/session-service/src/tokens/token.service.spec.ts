import type { ConfigService } from '@nestjs/config';
import {
  base64url,
  decodeJwt,
  decodeProtectedHeader,
  exportJWK,
  generateKeyPair,
  type JWK,
  SignJWT,
} from 'jose';
import { createHmac, createPublicKey } from 'node:crypto';
import { InvalidAccessTokenError, type InvalidAccessTokenReason } from '@app/contracts';
import type { Clock } from './clock';
import { SigningKeys } from './signing-keys';
import { TokenService } from './token.service';
import type { TokensEnv } from './tokens.env';

// The access-token contract (DESIGN.md): exactly these claims, a kid, an asymmetric signature;
// and every way of passing off a token this service did not issue, or no longer accepts.

const ISSUER = 'https://sessions.example.test';
const AUDIENCE = 'session-revocation-apis';
const T0 = Date.UTC(2030, 0, 1, 12, 0, 0);

class FakeClock implements Clock {
  constructor(public ms = T0) {}
  now(): number {
    return this.ms;
  }
}

async function newKey(alg: 'EdDSA' | 'ES256', kid: string): Promise<JWK> {
  const { privateKey } = await generateKeyPair(alg, {
    extractable: true,
    ...(alg === 'EdDSA' && { crv: 'Ed25519' }),
  });
  return { ...(await exportJWK(privateKey)), kid };
}

function serviceWith(keys: SigningKeys, clock: Clock, settings: Partial<TokensEnv> = {}) {
  const values: Record<string, unknown> = {
    ISSUER,
    ACCESS_TOKEN_AUDIENCE: [AUDIENCE],
    ACCESS_TOKEN_TTL_SECONDS: 300,
    ...settings,
  };
  const config = { get: (key: string) => values[key] };
  return new TokenService(keys, config as unknown as ConfigService<TokensEnv, true>, clock);
}

/** The error a refused token gives, checked to be the one class and to hide the token. */
async function refusal(service: TokenService, token: string): Promise<InvalidAccessTokenReason> {
  const error = await service.verifyAccessToken(token).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(InvalidAccessTokenError);
  const { message, reason } = error as InvalidAccessTokenError;
  const [header = '', payload = ''] = token.split('.');
  // Parts long enough not to occur in a short reason by chance.
  for (const part of [token, header, payload].filter((p) => p.length > 10)) {
    expect(message).not.toContain(part);
    expect(JSON.stringify(error)).not.toContain(part);
  }
  return reason;
}

const json = (value: unknown) => base64url.encode(JSON.stringify(value));

describe('TokenService', () => {
  let current: JWK;
  let keys: SigningKeys;
  let clock: FakeClock;
  let service: TokenService;

  beforeAll(async () => {
    current = await newKey('EdDSA', 'key-2030');
    keys = await SigningKeys.fromJwks([current]);
  });

  beforeEach(() => {
    clock = new FakeClock();
    service = serviceWith(keys, clock);
  });

  describe('issued tokens', () => {
    it('carry exactly the contract claims and a kid, and verify', async () => {
      const issued = await service.issueAccessToken({ sub: 'alice', sid: 's-1', roles: ['user'] });
      const iat = T0 / 1000;

      expect(decodeProtectedHeader(issued.token)).toEqual({
        alg: 'EdDSA',
        kid: 'key-2030',
        typ: 'at+jwt',
      });
      expect(decodeJwt(issued.token)).toEqual({
        iss: ISSUER,
        sub: 'alice',
        aud: AUDIENCE,
        iat,
        exp: iat + 300,
        jti: issued.jti,
        sid: 's-1',
        roles: ['user'],
      });
      expect(issued.expiresIn).toBe(300);
      expect(issued.jti).toMatch(/^[0-9a-f-]{36}$/);
      await expect(service.verifyAccessToken(issued.token)).resolves.toEqual(
        decodeJwt(issued.token),
      );
    });

    it('leave out roles when none are given, and get a new jti each time', async () => {
      const first = await service.issueAccessToken({ sub: 'alice', sid: 's-1' });
      const second = await service.issueAccessToken({ sub: 'alice', sid: 's-1' });

      expect(Object.keys(decodeJwt(first.token)).sort()).toEqual(
        ['aud', 'exp', 'iat', 'iss', 'jti', 'sid', 'sub'].sort(),
      );
      expect(first.jti).not.toBe(second.jti);
    });

    it('never outlive their session: exp is capped by notAfter', async () => {
      const iat = T0 / 1000;
      const capped = await service.issueAccessToken({ sub: 'a', sid: 's', notAfter: iat + 42 });
      const uncapped = await service.issueAccessToken({ sub: 'a', sid: 's', notAfter: iat + 900 });

      expect(decodeJwt(capped.token).exp).toBe(iat + 42);
      expect(capped.expiresIn).toBe(42);
      expect(decodeJwt(uncapped.token).exp).toBe(iat + 300);
      await expect(service.issueAccessToken({ sub: 'a', sid: 's', notAfter: iat })).rejects.toThrow(
        RangeError,
      );
    });

    it('carry the iat the caller fixed (the session step), and last from it', async () => {
      const second = T0 / 1000;
      clock.ms = T0 + 700;
      const ahead = await service.issueAccessToken({
        sub: 'alice',
        sid: 's-2',
        issuedAt: second + 1,
      });
      const behind = await service.issueAccessToken({
        sub: 'alice',
        sid: 's-2',
        issuedAt: second - 2,
      });
      const now = await service.issueAccessToken({ sub: 'alice', sid: 's-2' });

      expect(decodeJwt(ahead.token)).toMatchObject({ iat: second + 1, exp: second + 301 });
      expect(ahead.expiresIn).toBe(301);
      await expect(service.verifyAccessToken(ahead.token)).resolves.toMatchObject({
        iat: second + 1,
      });
      expect(decodeJwt(behind.token)).toMatchObject({ iat: second - 2, exp: second + 298 });
      expect(decodeJwt(now.token).iat).toBe(second);
    });

    it('expire after exp plus the 5 s tolerance, by the injected clock', async () => {
      const { token } = await service.issueAccessToken({ sub: 'alice', sid: 's-1' });
      const exp = decodeJwt(token).exp!;

      clock.ms = (exp + 4) * 1000;
      await expect(service.verifyAccessToken(token)).resolves.toMatchObject({ sub: 'alice' });
      clock.ms = (exp + 5) * 1000;
      expect(await refusal(service, token)).toBe('expired');
    });

    it('are refused before their iat (beyond the tolerance)', async () => {
      const { token } = await service.issueAccessToken({ sub: 'alice', sid: 's-1' });
      clock.ms = T0 - 6_000;
      expect(await refusal(service, token)).toBe('not yet valid');
    });
  });

  describe('forgeries', () => {
    let genuine: string;
    beforeEach(async () => {
      genuine = (await service.issueAccessToken({ sub: 'alice', sid: 's-1' })).token;
    });

    it('refuses alg "none"', async () => {
      const payload = decodeJwt(genuine);
      for (const alg of ['none', 'None', 'NONE']) {
        const forged = `${json({ alg, typ: 'at+jwt', kid: 'key-2030' })}.${json(payload)}.`;
        expect(await refusal(service, forged)).toBe('algorithm not allowed');
      }
    });

    it('refuses HS256 keyed with the public key, whatever its encoding', async () => {
      const publicJwk = keys.jwks().keys[0]!;
      const pem = createPublicKey({
        key: { kty: publicJwk.kty, crv: publicJwk.crv, x: publicJwk.x },
        format: 'jwk',
      }).export({
        type: 'spki',
        format: 'pem',
      });
      const secrets = [base64url.decode(publicJwk.x), pem, JSON.stringify(publicJwk)];
      const signingInput = `${json({ alg: 'HS256', typ: 'at+jwt', kid: 'key-2030' })}.${json({
        ...decodeJwt(genuine),
        sub: 'admin',
      })}`;
      for (const secret of secrets) {
        const mac = createHmac('sha256', secret).update(signingInput).digest('base64url');
        expect(await refusal(service, `${signingInput}.${mac}`)).toBe('algorithm not allowed');
      }
    });

    it('refuses a kid it does not publish, and a token without one', async () => {
      const stranger = await SigningKeys.fromJwks([await newKey('EdDSA', 'stranger')]);
      const theirs = await serviceWith(stranger, clock).issueAccessToken({ sub: 'a', sid: 's' });
      const withoutKid = await new SignJWT({ ...decodeJwt(genuine) })
        .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt' })
        .sign(keys.active.privateKey);

      expect(await refusal(service, theirs.token)).toBe('unknown key');
      expect(await refusal(service, withoutKid)).toBe('unknown key');
    });

    it("refuses another key that claims this service's kid", async () => {
      const impostor = await SigningKeys.fromJwks([await newKey('EdDSA', 'key-2030')]);
      const { token } = await serviceWith(impostor, clock).issueAccessToken({ sub: 'a', sid: 's' });
      expect(await refusal(service, token)).toBe('bad signature');
    });

    it('refuses a tampered payload (another sub, same signature)', async () => {
      const [header, payload, signature] = genuine.split('.');
      const claims = JSON.parse(new TextDecoder().decode(base64url.decode(payload!))) as object;
      const tampered = `${header!}.${json({ ...claims, sub: 'admin' })}.${signature!}`;
      expect(await refusal(service, tampered)).toBe('bad signature');
    });

    it('refuses another audience and another issuer', async () => {
      const forOthers = serviceWith(keys, clock, { ACCESS_TOKEN_AUDIENCE: ['billing-api'] });
      const fromOthers = serviceWith(keys, clock, { ISSUER: 'https://elsewhere.example.test' });
      const otherAudience = await forOthers.issueAccessToken({ sub: 'a', sid: 's' });
      const otherIssuer = await fromOthers.issueAccessToken({ sub: 'a', sid: 's' });

      expect(await refusal(service, otherAudience.token)).toBe('wrong audience');
      expect(await refusal(service, otherIssuer.token)).toBe('wrong issuer');
    });

    it('refuses a JWT of ours that is not an access token, or lacks a claim', async () => {
      const claims = decodeJwt(genuine);
      const sign = (payload: object, typ: string) =>
        new SignJWT({ ...payload })
          .setProtectedHeader({ alg: 'EdDSA', kid: 'key-2030', typ })
          .sign(keys.active.privateKey);
      const withoutSid = { ...claims };
      delete withoutSid.sid;

      expect(await refusal(service, await sign(claims, 'JWT'))).toBe('wrong type');
      expect(await refusal(service, await sign(withoutSid, 'at+jwt'))).toBe('missing claim');
      expect(await refusal(service, await sign({ ...claims, sid: 7 }, 'at+jwt'))).toBe('malformed');
    });

    it('refuses an alg that does not match the key the kid names', async () => {
      const ecKeys = await SigningKeys.fromJwks([await newKey('ES256', 'key-2030')]);
      const { token } = await serviceWith(ecKeys, clock).issueAccessToken({ sub: 'a', sid: 's' });
      expect(await refusal(service, token)).toBe('algorithm not allowed');
    });

    it.each(['', 'abc', 'a.b.c', `${'x'.repeat(20)}.${'y'.repeat(20)}.`])(
      'refuses garbage %j as malformed',
      async (garbage) => {
        expect(await refusal(service, garbage)).toBe('malformed');
      },
    );
  });

  describe('key rotation', () => {
    it('accepts the previous key while it is listed, and not once it is dropped', async () => {
      const previous = await newKey('ES256', 'key-2029');
      const before = serviceWith(await SigningKeys.fromJwks([previous]), clock);
      const during = serviceWith(await SigningKeys.fromJwks([current, previous]), clock);
      const after = serviceWith(await SigningKeys.fromJwks([current]), clock);
      const old = await before.issueAccessToken({ sub: 'alice', sid: 's-1' });
      const fresh = await during.issueAccessToken({ sub: 'alice', sid: 's-2' });

      await expect(during.verifyAccessToken(old.token)).resolves.toMatchObject({ sid: 's-1' });
      expect(decodeProtectedHeader(fresh.token)).toMatchObject({ kid: 'key-2030', alg: 'EdDSA' });
      expect(during.jwks().keys.map((key) => key.kid)).toEqual(['key-2030', 'key-2029']);
      expect(during.jwks().keys[1]).toEqual({
        kty: 'EC',
        crv: 'P-256',
        x: previous.x,
        y: previous.y,
        kid: 'key-2029',
        alg: 'ES256',
        use: 'sig',
      });

      expect(await refusal(after, old.token)).toBe('unknown key');
      await expect(after.verifyAccessToken(fresh.token)).resolves.toMatchObject({ sid: 's-2' });
      for (const jwks of [before.jwks(), during.jwks(), after.jwks()])
        for (const key of jwks.keys) expect(key).not.toHaveProperty('d');
    });

    it('hands out copies of the JWKS: altering one changes nothing', async () => {
      const published = service.jwks();
      published.keys[0]!.x = 'AAAA';
      published.keys.pop();
      expect(service.jwks().keys).toEqual([expect.objectContaining({ x: current.x })]);
      const { token } = await service.issueAccessToken({ sub: 'a', sid: 's' });
      await expect(service.verifyAccessToken(token)).resolves.toMatchObject({ sub: 'a' });
    });
  });
});
