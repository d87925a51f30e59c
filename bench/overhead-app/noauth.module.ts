import { configFromEnv } from '@app/config/nest';
import { Controller, Get, Module, type Type } from '@nestjs/common';
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
      configFromEnv(commonEnv),
      ObservabilityModule.forRoot({ serviceName: 'bench-overhead', readiness: [] }),
    ],
    controllers: [MeController],
  })
  class NoAuthModule {}
  return NoAuthModule;
}
