import { configFromEnv } from '@app/config/nest';
import {
  Controller,
  Get,
  Inject,
  Injectable,
  Module,
  Req,
  type Type,
  UnauthorizedException,
  UseGuards,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { AuthGuard, PassportModule, PassportStrategy } from '@nestjs/passport';
import { ObservabilityModule } from '@app/observability';
import { REDIS, RedisModule, RedisReadiness } from '@app/redis';
import type { Redis } from 'ioredis';
import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { ExtractJwt, Strategy } from 'passport-jwt';
import { naiveEnv, type NaiveEnv } from './config';

const PUBLIC_KEY_PEM = Symbol('PUBLIC_KEY_PEM');

interface Identity {
  sub: string;
  sid: string;
}

/**
 * The design most NestJS tutorials teach: passport-jwt (jsonwebtoken) checks the signature
 * with the issuer's public key, then one Redis GET per request asks a deny-list whether the
 * session was logged out.
 */
@Injectable()
class DenyListJwtStrategy extends PassportStrategy(Strategy, 'jwt') {
  private readonly denyListPrefix: string;

  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(PUBLIC_KEY_PEM) publicKeyPem: string,
    config: ConfigService<NaiveEnv, true>,
  ) {
    super({
      jwtFromRequest: ExtractJwt.fromAuthHeaderAsBearerToken(),
      secretOrKey: publicKeyPem,
      algorithms: ['ES256'],
      issuer: config.get('TOKEN_ISSUER', { infer: true }),
      audience: config.get('TOKEN_AUDIENCE', { infer: true }),
    });
    this.denyListPrefix = config.get('DENYLIST_PREFIX', { infer: true });
  }

  async validate(payload: { sub?: unknown; sid?: unknown }): Promise<Identity> {
    if (typeof payload.sub !== 'string' || typeof payload.sid !== 'string')
      throw new UnauthorizedException();
    if ((await this.redis.get(`${this.denyListPrefix}${payload.sid}`)) !== null)
      throw new UnauthorizedException();
    return { sub: payload.sub, sid: payload.sid };
  }
}

/** The first key of the JWKS as PEM, fetched once at start, as a tutorial's config would hold it. */
async function publicKeyFromJwks(config: ConfigService<NaiveEnv, true>): Promise<string> {
  const url = config.get('JWKS_URL', { infer: true });
  const response = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  if (!response.ok) throw new Error(`${url} answered ${response.status}`);
  const { keys } = (await response.json()) as { keys: JsonWebKey[] };
  const [key] = keys;
  if (!key) throw new Error(`${url} lists no key`);
  return createPublicKey({ key, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString();
}

@Controller()
class MeController {
  @Get('me')
  @UseGuards(AuthGuard('jwt'))
  me(@Req() request: { user: Identity }): { sub: string; session_id: string } {
    return { sub: request.user.sub, session_id: request.user.sid };
  }
}

/** (c) @nestjs/passport + passport-jwt + a Redis deny-list lookup on every request. */
export function naiveModule(): Type {
  @Module({
    imports: [
      configFromEnv(naiveEnv),
      ObservabilityModule.forRoot({ serviceName: 'bench-overhead', readiness: [RedisReadiness] }),
      RedisModule.fromEnv(),
      PassportModule.register({ session: false }),
    ],
    controllers: [MeController],
    providers: [
      { provide: PUBLIC_KEY_PEM, inject: [ConfigService], useFactory: publicKeyFromJwks },
      DenyListJwtStrategy,
    ],
  })
  class NaiveModule {}
  return NaiveModule;
}
