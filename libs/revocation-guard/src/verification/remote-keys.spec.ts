import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { closeServer } from '@app/testing';
import { InvalidAccessTokenError, verifyAccessToken } from '@app/contracts';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { RemoteKeys } from './remote-keys';

// The guard's view of the issuer's keys (jose's remote JWKS) against a real local HTTP JWKS:
// loaded before use, a new key found with one refetch, at most one refetch per cooldown for
// unknown kids, no kid refused, each key only for its own algorithm, no private part kept.

interface Key {
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

async function newKey(kid: string, alg: 'EdDSA' | 'ES256' = 'EdDSA'): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

describe('RemoteKeys (a real local JWKS over HTTP)', () => {
  let server: Server;
  let url: string;
  let served: JWK[] = [];
  let fetches = 0;

  beforeAll(async () => {
    server = createServer((_request, response) => {
      fetches += 1;
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ keys: served }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
  });

  afterAll(() => closeServer(server));

  const token = (key: Key, header: Record<string, unknown> = {}) =>
    new SignJWT({ sid: 's1' })
      .setProtectedHeader({ alg: key.jwk.alg as string, kid: key.kid, typ: 'at+jwt', ...header })
      .setIssuer('iss')
      .setSubject('u1')
      .setAudience('apis')
      .setIssuedAt()
      .setExpirationTime('5m')
      .setJti('j1')
      .sign(key.privateKey);
  const verify = (keys: RemoteKeys, jwt: string) =>
    verifyAccessToken(jwt, {
      keys: keys.resolver,
      issuer: 'iss',
      audience: 'apis',
      maxTokenAgeSeconds: 300,
    });
  const reason = (promise: Promise<unknown>) =>
    promise.then(
      () => 'accepted',
      (error: unknown) => (error instanceof InvalidAccessTokenError ? error.reason : String(error)),
    );

  it('loads the keys before use, finds a new one with one refetch, and no more than one per cooldown', async () => {
    const first = await newKey('k1');
    served = [first.jwk];
    fetches = 0;
    const keys = new RemoteKeys({ url, unknownKidCooldownMs: 1_000 });
    expect(keys.ready).toBe(false);
    await keys.start();
    expect({ ready: keys.ready, size: keys.size, fetches }).toEqual({
      ready: true,
      size: 1,
      fetches: 1,
    });
    await expect(verify(keys, await token(first))).resolves.toMatchObject({ sub: 'u1' });
    expect(fetches).toBe(1); // verified from what was loaded

    // A key that started signing since: the first token naming it refetches once (jose counts
    // the cooldown from the last fetch of any kind).
    const second = await newKey('k2', 'ES256');
    served = [first.jwk, second.jwk];
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    await expect(verify(keys, await token(second))).resolves.toMatchObject({ sub: 'u1' });
    expect(fetches).toBe(2);
    // Forged kids within the cooldown: refused without another fetch.
    const stranger = await newKey('nobody');
    expect(await reason(verify(keys, await token(stranger)))).toBe('unknown key');
    expect(await reason(verify(keys, await token({ ...stranger, kid: 'other' })))).toBe(
      'unknown key',
    );
    expect(fetches).toBe(2);
    keys.stop();
  });

  it('refuses a token without a kid, and a key used with another algorithm than its own', async () => {
    const ed = await newKey('ed');
    served = [ed.jwk];
    const keys = new RemoteKeys({ url });
    await keys.start();
    // JSON leaves an undefined member out: a header without `kid`.
    const noKid = await token(ed, { kid: undefined });
    expect(await reason(verify(keys, noKid))).toBe('unknown key');
    const es = await newKey('es', 'ES256');
    expect(await reason(verify(keys, await token({ ...es, kid: 'ed' })))).toBe(
      'algorithm not allowed',
    );
    keys.stop();
  });

  it('never keeps the private part of a key the JWKS wrongly publishes', async () => {
    const leaky = await newKey('leaky');
    const { privateKey } = leaky;
    served = [{ ...(await exportJWK(privateKey)), kid: 'leaky', alg: 'EdDSA', use: 'sig' }];
    const keys = new RemoteKeys({ url });
    await keys.start();
    await expect(verify(keys, await token(leaky))).resolves.toMatchObject({ sub: 'u1' });
    keys.stop();
  });
});
