import { Controller, Get, Inject, type Type } from '@nestjs/common';
import { Public } from '@app/auth-metadata';
import { ModuleRef } from '@nestjs/core';
import { HealthCheck, HealthCheckService, HealthIndicatorService } from '@nestjs/terminus';
import { READINESS_CHECKS, type ReadinessCheck } from './readiness-check';

const CHECK_TIMEOUT_MS = 2_000;

@Public()
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    private readonly moduleRef: ModuleRef,
    @Inject(READINESS_CHECKS) private readonly checkTypes: readonly Type<ReadinessCheck>[],
  ) {}

  private resolved: ReadinessCheck[] | undefined;

  private get checks(): ReadinessCheck[] {
    this.resolved ??= this.checkTypes.map((type) => this.moduleRef.get(type, { strict: false }));
    return this.resolved;
  }

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
