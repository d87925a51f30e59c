import { Global, Module } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { createLocalJWKSet, exportJWK, generateKeyPair, type JSONWebKeySet, jwtVerify } from 'jose';
import type { Clock } from './clock';
import { CLOCK } from './clock';
import { TokenService } from './token.service';
import { TokensModule } from './tokens.module';

// The module as the app will use it: served over HTTP (Fastify, no port), configured from a
// ConfigService, and verifiable by an API that only knows the published JWKS.

const ISSUER = 'https://sessions.example.test';

function configModule(values: Record<string, unknown>) {
  @Global()
  @Module({
    providers: [{ provide: ConfigService, useValue: { get: (key: string) => values[key] } }],
    exports: [ConfigService],
  })
  class FakeConfigModule {}
  return FakeConfigModule;
}

const settings = {
  NODE_ENV: 'production',
  ISSUER,
  ACCESS_TOKEN_AUDIENCE: ['session-revocation-apis'],
  ACCESS_TOKEN_TTL_SECONDS: 300,
};

describe('TokensModule', () => {
  let app: NestFastifyApplication;
  const clock: Clock = { now: () => Date.UTC(2030, 0, 1) };

  beforeAll(async () => {
    const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    const keys = [{ ...(await exportJWK(privateKey)), kid: 'k1' }];
    const moduleRef = await Test.createTestingModule({
      imports: [configModule({ ...settings, SIGNING_KEYS: JSON.stringify(keys) }), TokensModule],
    })
      .overrideProvider(CLOCK)
      .useValue(clock)
      .compile();
    app = moduleRef.createNestApplication<NestFastifyApplication>(new FastifyAdapter());
    await app.init();
    await app.getHttpAdapter().getInstance().ready();
  });

  afterAll(async () => {
    await app.close();
  });

  it('serves the public keys, cacheable for five minutes', async () => {
    const response = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' });

    expect(response.statusCode).toBe(200);
    expect(response.headers['cache-control']).toBe('public, max-age=300');
    const jwks = response.json<JSONWebKeySet>();
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ kty: 'OKP', crv: 'Ed25519', kid: 'k1', alg: 'EdDSA' });
    expect(Object.keys(jwks.keys[0]!).sort()).toEqual(['alg', 'crv', 'kid', 'kty', 'use', 'x']);
    expect(response.body).not.toContain('"d"');
  });

  it('serves the issuer metadata', async () => {
    const response = await app.inject({ method: 'GET', url: '/.well-known/openid-configuration' });

    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({
      issuer: ISSUER,
      jwks_uri: `${ISSUER}/.well-known/jwks.json`,
      token_endpoint: `${ISSUER}/auth/refresh`,
      revocation_endpoint: `${ISSUER}/oauth/revoke`,
      revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      introspection_endpoint: `${ISSUER}/oauth/introspect`,
      introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      grant_types_supported: ['refresh_token'],
      token_endpoint_auth_methods_supported: ['none'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['EdDSA'],
      access_token_signing_alg_values_supported: ['EdDSA'],
    });
  });

  it('issues tokens an API verifies with nothing but the served JWKS', async () => {
    const { token } = await app
      .get(TokenService)
      .issueAccessToken({ sub: 'alice', sid: 's-1', roles: ['user'] });
    const served = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' });

    const { payload, protectedHeader } = await jwtVerify(
      token,
      createLocalJWKSet(served.json<JSONWebKeySet>()),
      {
        issuer: ISSUER,
        audience: 'session-revocation-apis',
        algorithms: ['EdDSA', 'ES256'],
        typ: 'at+jwt',
        currentDate: new Date(clock.now()),
      },
    );
    expect(protectedHeader.kid).toBe('k1');
    expect(payload).toMatchObject({ sub: 'alice', sid: 's-1', roles: ['user'] });
  });

  it('fails to start in production without keys, naming both variables', async () => {
    const starting = Test.createTestingModule({
      imports: [configModule(settings), TokensModule],
    }).compile();
    await expect(starting).rejects.toThrow(/SIGNING_KEYS .*SIGNING_KEYS_FILE/);
  });
});
