import {
  exportJWK,
  generateKeyPair,
  SignJWT,
  UnsecuredJWT,
  type CryptoKey,
  type JWK,
  type JWTPayload,
} from 'jose';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { closeServer } from './http-server';

export interface SignOptions {
  /** Seconds from now until `exp`; negative for a token that has already expired. Default 300. */
  expiresIn?: number;
  /** `kid` header to claim instead of the current key's (e.g. one the JWKS does not list). */
  kid?: string;
  nonce?: string;
  /** `typ` header instead of the default (`JWT` for ID tokens, `logout+jwt` for logout tokens); null leaves it out. */
  typ?: string | null;
  /** `none`: an unsecured token (no signature), as an attacker would send. */
  alg?: 'none';
}

/** OpenID Connect Back-Channel Logout 1.0: the event a logout token carries. */
export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

export interface TestOidcIssuer {
  /** `http://127.0.0.1:<port>`: the `iss` of its tokens. */
  issuer: string;
  jwksUri: string;
  /** The client id its tokens are addressed to by default. */
  audience: string;
  /**
   * An ID token signed with the current key: `iss`, `aud`, `sub` ("user-1"), `iat`, `exp`, then
   * `claims`, which may override any of them (`sub: undefined` leaves `sub` out).
   */
  sign(claims?: JWTPayload, options?: SignOptions): Promise<string>;
  /**
   * A logout token (OpenID Connect Back-Channel Logout 1.0) signed with the current key: `iss`,
   * `aud`, `iat`, `exp` (2 minutes), a fresh `jti`, the back-channel `events` member, then
   * `claims` (give `sid` and/or `sub`; `undefined` leaves a claim out). `typ` is `logout+jwt`.
   */
  signLogoutToken(claims?: JWTPayload, options?: SignOptions): Promise<string>;
  /** A new signing key; the old ones stay in the JWKS, as at a real issuer. */
  rotate(): Promise<void>;
  /** How many times the JWKS was fetched. */
  readonly jwksFetches: number;
  stop(): Promise<void>;
}

interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

async function newKey(): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const kid = randomBytes(8).toString('hex');
  return {
    kid,
    privateKey,
    publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' },
  };
}

/**
 * A small OpenID Connect provider for tests: discovery document and JWKS over HTTP on
 * 127.0.0.1 (a free port), ES256 ID tokens signed in process. No authorization endpoint:
 * tests mint the tokens a real provider would hand the client.
 */
export async function startOidcIssuer(): Promise<TestOidcIssuer> {
  const keys = [await newKey()];
  let jwksFetches = 0;
  let issuer = '';

  const send = (response: ServerResponse, status: number, body: unknown) => {
    response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    if (request.method === 'GET' && request.url === '/jwks') {
      jwksFetches += 1;
      send(response, 200, { keys: keys.map((key) => key.publicJwk) });
    } else if (request.method === 'GET' && request.url === '/.well-known/openid-configuration') {
      send(response, 200, {
        issuer,
        jwks_uri: `${issuer}/jwks`,
        response_types_supported: ['id_token'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['ES256'],
      });
    } else {
      send(response, 404, { error: 'not_found' });
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject).listen(0, '127.0.0.1', resolve);
  });
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const audience = 'test-client';

  // Claims set to `undefined` are left out (JSON has no undefined).
  const signWith = async (payload: JWTPayload, typ: string, options: SignOptions) => {
    const claims = JSON.parse(JSON.stringify(payload)) as JWTPayload;
    const type = options.typ === undefined ? typ : options.typ;
    if (options.alg === 'none') {
      const unsecured = new UnsecuredJWT(claims).encode();
      if (type === null) return unsecured;
      const [, body] = unsecured.split('.');
      const header = Buffer.from(JSON.stringify({ alg: 'none', typ: type })).toString('base64url');
      return `${header}.${body}.`;
    }
    const current = keys[keys.length - 1] as SigningKey;
    return new SignJWT(claims)
      .setProtectedHeader({
        alg: 'ES256',
        kid: options.kid ?? current.kid,
        ...(type === null ? {} : { typ: type }),
      })
      .sign(current.privateKey);
  };

  return {
    issuer,
    jwksUri: `${issuer}/jwks`,
    audience,
    get jwksFetches() {
      return jwksFetches;
    },
    async sign(claims = {}, options = {}) {
      const iat = Math.floor(Date.now() / 1000);
      const payload: JWTPayload = {
        iss: issuer,
        aud: audience,
        sub: 'user-1',
        iat,
        exp: iat + (options.expiresIn ?? 300),
        ...(options.nonce === undefined ? {} : { nonce: options.nonce }),
        ...claims,
      };
      return signWith(payload, 'JWT', options);
    },
    async signLogoutToken(claims = {}, options = {}) {
      const iat = Math.floor(Date.now() / 1000);
      const payload: JWTPayload = {
        iss: issuer,
        aud: audience,
        iat,
        exp: iat + (options.expiresIn ?? 120),
        jti: randomBytes(12).toString('base64url'),
        events: { [BACKCHANNEL_LOGOUT_EVENT]: {} },
        ...(options.nonce === undefined ? {} : { nonce: options.nonce }),
        ...claims,
      };
      return signWith(payload, 'logout+jwt', options);
    },
    async rotate() {
      keys.push(await newKey());
    },
    stop: () => closeServer(server),
  };
}
