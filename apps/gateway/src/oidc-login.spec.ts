import fastifyCookie from '@fastify/cookie';
import Fastify from 'fastify';
import { gatewayEnv } from './config';
import { Refusal, refuse } from './refusal';
import { deviceOf } from './device';
import { oidcRoutes, oidcSettings, safeReturnTo, type OidcDeps } from './oidc-login';

const ORIGIN = 'https://app.example';

describe('return_to of a sign-in through the provider', () => {
  it.each(['/', '/#/admin', '/?tab=devices', '/a/b?c=d#e', '/%2F'])('takes %s', (path) => {
    expect(safeReturnTo(path, ORIGIN)).toBe(path);
  });

  it('is / when absent', () => {
    expect(safeReturnTo(undefined, ORIGIN)).toBe('/');
  });

  it.each([
    'https://evil.example/',
    '//evil.example/',
    '/\\evil.example',
    '\\\\evil.example',
    'javascript:alert(1)',
    '',
    'admin',
    '/"><script>',
    "/'onload",
    '/ a',
    '/\n',
    ['/', '/'],
  ])('refuses %j', (value) => {
    expect(safeReturnTo(value, ORIGIN)).toBeUndefined();
  });

  it('refuses a path longer than 2,000 characters', () => {
    expect(safeReturnTo(`/${'a'.repeat(2_000)}`, ORIGIN)).toBeUndefined();
  });
});

describe('the device of a sign-in through the provider', () => {
  it('is named from the User-Agent as the console names it', () => {
    expect(
      deviceOf('Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36'),
    ).toEqual({ name: 'Chrome on Linux', platform: 'Linux' });
    expect(deviceOf(undefined)).toEqual({ name: 'Browser on web', platform: 'web' });
  });
});

describe('the OpenID provider settings', () => {
  const parse = (env: Record<string, string>) =>
    gatewayEnv.safeParse({
      GATEWAY_OIDC_CLIENT_ID: 'gateway',
      GATEWAY_OIDC_CLIENT_SECRET: 'secret',
      ...env,
    });

  it('take https, or plain http on loopback or with ALLOW_INSECURE_HTTP (docker-compose)', () => {
    expect(parse({ GATEWAY_OIDC_ISSUER: 'https://idp.example/realms/x' }).success).toBe(true);
    expect(parse({ GATEWAY_OIDC_ISSUER: 'http://127.0.0.1:4000' }).success).toBe(true);
    expect(parse({ GATEWAY_OIDC_ISSUER: 'http://idp.example' }).success).toBe(false);
    expect(
      parse({ GATEWAY_OIDC_ISSUER: 'http://dev-idp.localhost:4000', ALLOW_INSECURE_HTTP: 'true' })
        .success,
    ).toBe(true);
  });

  it('need issuer, client id and secret together', () => {
    const partial = gatewayEnv.safeParse({ GATEWAY_OIDC_ISSUER: 'https://idp.example' });
    expect(partial.error?.issues.map((issue) => issue.path[0]).sort()).toEqual([
      'GATEWAY_OIDC_CLIENT_ID',
      'GATEWAY_OIDC_CLIENT_SECRET',
    ]);
  });
});

describe('a gateway without an OpenID provider', () => {
  it('has no settings unless issuer, client id and secret are all set', () => {
    const base = { GATEWAY_OIDC_PROVIDER_NAME: undefined, GATEWAY_OIDC_SCOPES: 'openid' };
    expect(
      oidcSettings({
        ...base,
        GATEWAY_OIDC_ISSUER: 'https://idp.example/realms/x',
        GATEWAY_OIDC_CLIENT_ID: 'gateway',
        GATEWAY_OIDC_CLIENT_SECRET: undefined,
      }),
    ).toBeUndefined();
    expect(
      oidcSettings({
        ...base,
        GATEWAY_OIDC_ISSUER: 'https://idp.example/realms/x',
        GATEWAY_OIDC_CLIENT_ID: 'gateway',
        GATEWAY_OIDC_CLIENT_SECRET: 's',
      })?.providerName,
    ).toBe('idp.example');
  });

  it('offers no provider and answers its sign-in routes 404 in JSON', async () => {
    const fastify = Fastify();
    await fastify.register(fastifyCookie);
    fastify.setErrorHandler((error, _request, reply) =>
      error instanceof Refusal ? refuse(reply, error, () => undefined) : reply.code(500).send(),
    );
    oidcRoutes(fastify, {
      provider: undefined,
      redis: undefined,
      prefix: 'gw:',
      env: { GATEWAY_ALLOWED_ORIGINS: [ORIGIN] },
    } as unknown as OidcDeps);
    const providers = await fastify.inject({ url: '/bff/providers' });
    expect(providers.json()).toEqual([]);
    for (const url of ['/bff/login/oidc?return_to=/', '/bff/callback?code=a&state=b']) {
      const answer = await fastify.inject({ url });
      expect({ url, status: answer.statusCode, body: answer.json() }).toEqual({
        url,
        status: 404,
        body: { error: 'not_found', error_description: expect.any(String) },
      });
    }
    await fastify.close();
  });
});
