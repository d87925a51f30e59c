import { Controller, Get, Module, type Type } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { validateEnv } from '@app/config';
import { ObservabilityModule } from '@app/observability';
import { commonEnv, FIXED_IDENTITY } from './config';

@Controller()
class MeController {
  /** The same JSON as the guarded variants, with nothing in front of it. */
  @Get('me')
  me(): { sub: string; session_id: string } {
    return FIXED_IDENTITY;
  }
}

/** (a) No authentication at all: the floor the other variants are compared with. */
export function noauthModule(): Type {
  @Module({
    imports: [
      ConfigModule.forRoot({
        isGlobal: true,
        ignoreEnvFile: true,
        validate: validateEnv(commonEnv),
      }),
      ObservabilityModule.forRoot({ serviceName: 'bench-overhead', readiness: [] }),
    ],
    controllers: [MeController],
  })
  class NoAuthModule {}
  return NoAuthModule;
}
