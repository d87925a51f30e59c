import { Controller, Get, Header } from '@nestjs/common';
import { Public } from '@app/auth-metadata';
import { ConfigService } from '@nestjs/config';
import { CLIENT_AUTH_METHODS } from '../oauth/client-credentials';
import { SigningKeys } from './signing-keys';
import { TokenService } from './token.service';
import type { TokensEnv } from './tokens.env';

/** What verifiers fetch: the public keys, and the issuer metadata that points at them. */
@Public()
@Controller('.well-known')
export class WellKnownController {
  private readonly issuer: string;

  constructor(
    private readonly tokens: TokenService,
    private readonly keys: SigningKeys,
    config: ConfigService<TokensEnv, true>,
  ) {
    this.issuer = config.get('ISSUER', { infer: true });
  }

  // Five minutes: a new key is published (second in SIGNING_KEYS) at least this long before
  // it signs; see tokens.env.ts.
  @Get('jwks.json')
  @Header('Cache-Control', 'public, max-age=300')
  jwks() {
    return this.tokens.jwks();
  }

  @Get('openid-configuration')
  @Header('Cache-Control', 'public, max-age=300')
  openidConfiguration() {
    const algorithms = this.keys.algorithms();
    return {
      issuer: this.issuer,
      jwks_uri: `${this.issuer}/.well-known/jwks.json`,
      token_endpoint: `${this.issuer}/auth/refresh`,
      revocation_endpoint: `${this.issuer}/oauth/revoke`,
      revocation_endpoint_auth_methods_supported: [...CLIENT_AUTH_METHODS],
      introspection_endpoint: `${this.issuer}/oauth/introspect`,
      introspection_endpoint_auth_methods_supported: [...CLIENT_AUTH_METHODS],
      grant_types_supported: ['refresh_token'],
      // Public clients: a refresh token is its own credential.
      token_endpoint_auth_methods_supported: ['none'],
      subject_types_supported: ['public'],
      // OpenID Discovery requires this member; no ID tokens are issued, so it states the
      // algorithms of the keys published here, the same as for access tokens.
      id_token_signing_alg_values_supported: algorithms,
      access_token_signing_alg_values_supported: algorithms,
    };
  }
}
