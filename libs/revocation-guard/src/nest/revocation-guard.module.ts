import { optional } from '@app/config';
import {
  Injectable,
  Logger,
  Module,
  type DynamicModule,
  type InjectionToken,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
  type OptionalFactoryDependency,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { APP_GUARD } from '@nestjs/core';
import type { Registry } from 'prom-client';
import { kafkaSecurity, readKafkaEnv } from '@app/kafka';
import type { RevocationGuardEnv } from '../guard.env';
import { RevocationGuard, type RevocationGuardOptions } from '../revocation-guard';
import { RevocationAuthGuard } from './revocation-auth.guard';

const GUARD_OPTIONS = Symbol('REVOCATION_GUARD_OPTIONS');
const METRICS = Symbol('REVOCATION_GUARD_METRICS_REGISTRY');

/** What an app's `/health/ready` consults (the shape of `@app/observability`'s checks). */
export interface ReadinessCheck {
  readonly name: string;
  check(signal: AbortSignal): Promise<Record<string, unknown> | undefined>;
}

/** Starts the guard once the app is up (so /health/live answers during the replay), stops it last. */
@Injectable()
class RevocationGuardLifecycle implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('RevocationGuard');
  constructor(private readonly guard: RevocationGuard) {}

  onApplicationBootstrap(): void {
    this.guard.start().catch((error: unknown) => {
      this.logger.error(`the revocation guard could not start: ${String(error)}`);
    });
  }

  async onApplicationShutdown(): Promise<void> {
    await this.guard.stop();
  }
}

/** `/health/ready` is 200 once the issuer's keys are loaded and the revocation window replayed. */
@Injectable()
export class RevocationReadiness implements ReadinessCheck {
  readonly name = 'revocations';
  constructor(private readonly guard: RevocationGuard) {}

  check(): Promise<Record<string, unknown>> {
    const health = this.guard.health();
    const details = {
      keys: health.keys.count,
      replay: health.replay,
      store: health.store,
      freshness: {
        fresh: health.freshness.fresh,
        bound_ms: health.freshness.boundMs,
        stalest_age_ms: Number.isFinite(health.freshness.stalestAgeMs)
          ? health.freshness.stalestAgeMs
          : null,
        stalest_partition: health.freshness.stalestPartition ?? null,
        silent_partitions: health.freshness.silentPartitions,
        fail_open: health.freshness.failOpen,
      },
    };
    if (!health.ready) {
      const waiting = !health.keys.ready ? 'the issuer keys' : 'the revocation replay';
      return Promise.reject(new Error(`waiting for ${waiting}: ${JSON.stringify(details)}`));
    }
    return Promise.resolve(details);
  }
}

export interface RevocationGuardModuleOptions {
  imports?: DynamicModule['imports'];
  inject?: (InjectionToken | OptionalFactoryDependency)[];
  useFactory: (...args: never[]) => RevocationGuardOptions | Promise<RevocationGuardOptions>;
  /** The app's Prometheus registry, by its injection token: the guard's metrics go there. */
  metricsRegistry?: InjectionToken;
}

/**
 * The revocation-aware guard for a NestJS app: a global guard on every route (`@Public()` opts
 * out, `@Roles()` adds role checks, `@CurrentSession()` gives the verified claims), the
 * consumer that keeps the revocation view, a readiness check, and metrics on the app's registry.
 */
@Module({})
export class RevocationGuardModule {
  static forRootAsync(options: RevocationGuardModuleOptions): DynamicModule {
    return {
      module: RevocationGuardModule,
      global: true,
      imports: options.imports ?? [],
      providers: [
        { provide: GUARD_OPTIONS, useFactory: options.useFactory, inject: options.inject ?? [] },
        options.metricsRegistry === undefined
          ? { provide: METRICS, useValue: undefined }
          : { provide: METRICS, useExisting: options.metricsRegistry },
        {
          provide: RevocationGuard,
          inject: [GUARD_OPTIONS, METRICS],
          useFactory: (settings: RevocationGuardOptions, registry?: Registry) =>
            new RevocationGuard({
              logger: new Logger('RevocationGuard'),
              ...settings,
              ...(registry && !settings.registry && { registry }),
            }),
        },
        RevocationGuardLifecycle,
        RevocationReadiness,
        { provide: APP_GUARD, useClass: RevocationAuthGuard },
      ],
      exports: [RevocationGuard, RevocationReadiness],
    };
  }

  /**
   * The guard configured from the app's validated environment (see `revocationGuardEnv`);
   * `metricsRegistry`: the injection token of the app's Prometheus registry, if it has one.
   */
  static fromEnv(
    serviceName: string,
    { metricsRegistry }: { metricsRegistry?: InjectionToken } = {},
  ): DynamicModule {
    return RevocationGuardModule.forRootAsync({
      ...(metricsRegistry === undefined ? {} : { metricsRegistry }),
      inject: [ConfigService],
      useFactory: (config: ConfigService<RevocationGuardEnv, true>) => {
        const get = <K extends keyof RevocationGuardEnv>(key: K) =>
          config.get(key, { infer: true }) as RevocationGuardEnv[K];
        return {
          serviceName: optional(get('KAFKA_CLIENT_ID')) ?? serviceName,
          instanceId: optional(get('INSTANCE_ID')),
          brokers: get('KAFKA_BROKERS'),
          kafkaSecurity: kafkaSecurity(readKafkaEnv(config)),
          topic: get('REVOCATION_TOPIC'),
          jwksUrl: get('JWKS_URL'),
          issuer: get('TOKEN_ISSUER'),
          audience: get('TOKEN_AUDIENCE'),
          accessTokenMaxTtlSeconds: get('ACCESS_TOKEN_MAX_TTL_SECONDS'),
          clockToleranceSeconds: get('CLOCK_TOLERANCE_SECONDS'),
          freshnessBoundMs: get('FRESHNESS_BOUND_MS'),
          failOpen: get('REVOCATION_FAIL_OPEN'),
          verifiedTokenCacheSize: get('VERIFIED_TOKEN_CACHE_SIZE'),
          fetchMaxWaitMs: get('KAFKA_FETCH_MAX_WAIT_MS'),
        };
      },
    });
  }
}
