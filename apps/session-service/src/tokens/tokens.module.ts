import { Module } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { HttpEnv } from '@app/config';
import { optional } from '@app/config';
import { CLOCK, systemClock } from './clock';
import { loadSigningKeys, SigningKeys } from './signing-keys';
import { TokenService } from './token.service';
import type { TokensEnv } from './tokens.env';
import { WellKnownController } from './well-known.controller';

/**
 * Access tokens: signing, verification, `/.well-known/jwks.json` and the issuer metadata.
 * Reads `tokensEnv` (and NODE_ENV) from the global ConfigService; fails the start when the
 * signing keys are missing (in production) or unusable.
 */
@Module({
  controllers: [WellKnownController],
  providers: [
    {
      provide: SigningKeys,
      inject: [ConfigService],
      useFactory: (config: ConfigService<TokensEnv & Pick<HttpEnv, 'NODE_ENV'>, true>) =>
        loadSigningKeys({
          NODE_ENV: config.get('NODE_ENV', { infer: true }),
          SIGNING_KEYS: optional(config.get('SIGNING_KEYS', { infer: true })),
          SIGNING_KEYS_FILE: optional(config.get('SIGNING_KEYS_FILE', { infer: true })),
        }),
    },
    { provide: CLOCK, useValue: systemClock },
    TokenService,
  ],
  exports: [TokenService, CLOCK],
})
export class TokensModule {}
