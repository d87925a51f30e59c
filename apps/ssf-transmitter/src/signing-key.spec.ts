import { SET_TYP } from '@app/contracts';
import { compactVerify, createLocalJWKSet, exportJWK, generateKeyPair } from 'jose';
import type { SigningJwk } from './config';
import { SigningKey } from './signing-key';

describe('SigningKey', () => {
  it.each([
    ['ES256', { crv: 'P-256' }],
    ['EdDSA', { crv: 'Ed25519' }],
  ] as const)('signs a %s SET that jose verifies against the published JWKS', async (alg, opts) => {
    const { privateKey } = await generateKeyPair(alg, { ...opts, extractable: true });
    const key = await SigningKey.fromJwk((await exportJWK(privateKey)) as SigningJwk);
    expect(key.publicJwk).not.toHaveProperty('d');
    const claims = { iss: 'https://ssf.example', jti: 'x', events: {} };
    const jws = key.sign(claims);
    const { payload, protectedHeader } = await compactVerify(
      jws,
      createLocalJWKSet({ keys: [key.publicJwk] }),
    );
    expect(protectedHeader).toEqual({ alg, kid: key.kid, typ: SET_TYP });
    expect(JSON.parse(new TextDecoder().decode(payload))).toEqual(claims);
    const [header, body, signature] = jws.split('.');
    const forged = Buffer.from(JSON.stringify({ ...claims, jti: 'y' })).toString('base64url');
    await expect(
      compactVerify(
        `${header}.${forged}.${signature}`,
        createLocalJWKSet({ keys: [key.publicJwk] }),
      ),
    ).rejects.toThrow();
    expect(body).toBeDefined();
  });

  it('refuses keys of other curves', async () => {
    const { privateKey } = await generateKeyPair('ES384', { extractable: true });
    const jwk = (await exportJWK(privateKey)) as unknown as SigningJwk;
    await expect(SigningKey.fromJwk(jwk)).rejects.toThrow(/P-256 or an OKP Ed25519/);
  });
});
