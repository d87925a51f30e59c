import { Controller, Get, Inject } from '@nestjs/common';
import { HealthCheck, HealthCheckService, HealthIndicatorService } from '@nestjs/terminus';
import { READINESS_CHECKS, type ReadinessCheck } from './readiness-check';

const CHECK_TIMEOUT_MS = 2_000;

@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    @Inject(READINESS_CHECKS) private readonly checks: readonly ReadinessCheck[],
  ) {}

  /** The process is up and its event loop turns; no dependency is consulted. */
  @Get('live')
  @HealthCheck()
  live() {
    return this.health.check([]);
  }

  /** 200 only when every dependency this app needs answers; 503 naming the ones that do not. */
  @Get('ready')
  @HealthCheck()
  ready() {
    return this.health.check(
      this.checks.map(
        (dependency) => () =>
          this.indicators
            .check(dependency.name)
            .attempt(async ({ signal }) => dependency.check(signal))
            .withTimeout(CHECK_TIMEOUT_MS),
      ),
    );
  }
}
