import { ACCESS_TOKEN_TYPE } from '@app/contracts';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { closeServer } from './http-server';

export interface TestAccessTokenIssuer {
  /** `http://127.0.0.1:<port>`: the `iss` of its tokens. */
  issuer: string;
  /** Its JWKS, at the session service's path: the one Ed25519 public key. */
  jwksUrl: string;
  /** The `aud` of its tokens. */
  audience: string;
  kid: string;
  /** The public key the JWKS lists, to verify without fetching it. */
  publicKey: CryptoKey;
  /**
   * An access token as the session service issues one: `typ` at+jwt, EdDSA with the key's
   * `kid`, `iss`, `sub`, `aud`, `iat` (now), `exp` (`iat` + `ttlSeconds`), a new `jti`, `sid`.
   */
  sign(claims: { sub: string; sid: string; roles?: string[] }): Promise<string>;
  /** How many times the JWKS was fetched. */
  readonly jwksFetches: number;
  stop(): Promise<void>;
}

/**
 * The session service's side of access tokens, for tests and benchmarks of their verifiers:
 * an Ed25519 key, its JWKS over HTTP on 127.0.0.1 (a free port), tokens signed in process.
 */
export async function startAccessTokenIssuer({
  audience = 'test-api',
  ttlSeconds = 300,
}: { audience?: string; ttlSeconds?: number } = {}): Promise<TestAccessTokenIssuer> {
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  const kid = `test-${randomBytes(4).toString('hex')}`;
  const { kty, crv, x } = await exportJWK(publicKey);
  const jwks = JSON.stringify({ keys: [{ kty, crv, x, kid, alg: 'EdDSA', use: 'sig' }] });
  let jwksFetches = 0;
  const server = createServer((request, response) => {
    if (request.method === 'GET' && request.url === '/.well-known/jwks.json') {
      jwksFetches += 1;
      response.writeHead(200, { 'content-type': 'application/json' }).end(jwks);
    } else response.writeHead(404).end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject).listen(0, '127.0.0.1', resolve);
  });
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    issuer,
    jwksUrl: `${issuer}/.well-known/jwks.json`,
    audience,
    kid,
    publicKey,
    get jwksFetches() {
      return jwksFetches;
    },
    sign({ sub, sid, roles }) {
      const iat = Math.floor(Date.now() / 1000);
      return new SignJWT({ sid, ...(roles && { roles }) })
        .setProtectedHeader({ alg: 'EdDSA', kid, typ: ACCESS_TOKEN_TYPE })
        .setIssuer(issuer)
        .setSubject(sub)
        .setAudience(audience)
        .setIssuedAt(iat)
        .setExpirationTime(iat + ttlSeconds)
        .setJti(randomUUID())
        .sign(privateKey);
    },
    stop: () => closeServer(server),
  };
}
