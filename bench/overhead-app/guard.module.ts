import { configFromEnv } from '@app/config/nest';
import { Controller, Get, Module, type Type } from '@nestjs/common';
import { METRICS_REGISTRY, ObservabilityModule } from '@app/observability';
import { revocationGuardEnv, type VerifiedSession } from '@app/revocation-guard';
import {
  CurrentSession,
  RevocationGuardModule,
  RevocationReadiness,
} from '@app/revocation-guard/nest';
import { commonEnv } from './config';

@Controller()
class MeController {
  @Get('me')
  me(@CurrentSession() session: VerifiedSession): { sub: string; session_id: string } {
    return { sub: session.sub, session_id: session.sid };
  }
}

/**
 * (b) Our guard, as the API services use it: a global guard that verifies the token against
 * the issuer's JWKS (verified tokens cached) and looks its session up in the in-memory
 * revocation store that the guard's Kafka consumer keeps.
 */
export function guardModule(): Type {
  @Module({
    imports: [
      configFromEnv(commonEnv.extend(revocationGuardEnv.shape)),
      ObservabilityModule.forRoot({
        serviceName: 'bench-overhead',
        readiness: [RevocationReadiness],
      }),
      RevocationGuardModule.fromEnv('bench-overhead', { metricsRegistry: METRICS_REGISTRY }),
    ],
    controllers: [MeController],
  })
  class GuardModule {}
  return GuardModule;
}
