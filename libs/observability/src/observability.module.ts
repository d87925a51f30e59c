import { type DynamicModule, Module, type Type } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { HealthController } from './health.controller';
import { createMetricsRegistry, METRICS_REGISTRY, MetricsController } from './metrics';
import { READINESS_CHECKS, type ReadinessCheck } from './readiness-check';

export interface ObservabilityOptions {
  serviceName: string;
  /** Providers (available in the importing app) that `/health/ready` consults. */
  readiness: Type<ReadinessCheck>[];
}

/** `/health/live`, `/health/ready` and `/metrics`, the same on every app. */
@Module({})
export class ObservabilityModule {
  static forRoot({ serviceName, readiness }: ObservabilityOptions): DynamicModule {
    return {
      module: ObservabilityModule,
      global: true,
      imports: [TerminusModule.forRoot({ logger: false })],
      controllers: [HealthController, MetricsController],
      providers: [
        { provide: METRICS_REGISTRY, useFactory: () => createMetricsRegistry(serviceName) },
        // The classes, resolved from the whole app when first needed: they are the app's
        // providers, which this module cannot inject directly.
        { provide: READINESS_CHECKS, useValue: readiness },
      ],
      exports: [METRICS_REGISTRY],
    };
  }
}
