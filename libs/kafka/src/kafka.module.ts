import {
  type DynamicModule,
  Inject,
  Injectable,
  Module,
  type OnApplicationShutdown,
  type InjectionToken,
  type OptionalFactoryDependency,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { Admin, Kafka } from 'kafkajs';
import { optional, type KafkaEnv } from '@app/config';
import type { ReadinessCheck } from '@app/observability';
import { createKafka, type KafkaClientOptions } from './kafka-client';
import { kafkaSecurity } from './kafka-security';

/** Injection token of the app's KafkaJS client. */
export const KAFKA = Symbol('KAFKA');

/** Reports Kafka ready when the cluster answers a metadata request. */
@Injectable()
export class KafkaReadiness implements ReadinessCheck, OnApplicationShutdown {
  readonly name = 'kafka';
  private admin: Admin | undefined;

  constructor(@Inject(KAFKA) private readonly kafka: Kafka) {}

  async check(): Promise<Record<string, unknown>> {
    this.admin ??= this.kafka.admin({ retry: { retries: 0 } });
    try {
      await this.admin.connect();
      const cluster = await this.admin.describeCluster();
      return { brokers: cluster.brokers.length, controller: cluster.controller };
    } catch (error) {
      await this.admin.disconnect().catch(() => undefined);
      this.admin = undefined;
      throw error;
    }
  }

  async onApplicationShutdown(): Promise<void> {
    await this.admin?.disconnect();
  }
}

/** The Kafka variables of the app's validated configuration. */
export function readKafkaEnv(config: ConfigService<KafkaEnv, true>): KafkaEnv {
  const get = <K extends keyof KafkaEnv>(key: K) => config.get(key, { infer: true }) as KafkaEnv[K];
  return {
    KAFKA_BROKERS: get('KAFKA_BROKERS'),
    KAFKA_CLIENT_ID: optional(get('KAFKA_CLIENT_ID')),
    KAFKA_SSL: get('KAFKA_SSL'),
    KAFKA_SSL_CA_FILE: optional(get('KAFKA_SSL_CA_FILE')),
    KAFKA_SASL_MECHANISM: optional(get('KAFKA_SASL_MECHANISM')),
    KAFKA_SASL_USERNAME: optional(get('KAFKA_SASL_USERNAME')),
    KAFKA_SASL_PASSWORD: optional(get('KAFKA_SASL_PASSWORD')),
    KAFKA_SASL_PASSWORD_FILE: optional(get('KAFKA_SASL_PASSWORD_FILE')),
  };
}

@Module({})
export class KafkaModule {
  static forRootAsync(options: {
    useFactory: (...args: never[]) => KafkaClientOptions | Promise<KafkaClientOptions>;
    inject?: (InjectionToken | OptionalFactoryDependency)[];
  }): DynamicModule {
    return {
      module: KafkaModule,
      global: true,
      providers: [
        {
          provide: KAFKA,
          useFactory: async (...args: never[]) => createKafka(await options.useFactory(...args)),
          inject: options.inject ?? [],
        },
        KafkaReadiness,
      ],
      exports: [KAFKA, KafkaReadiness],
    };
  }

  /** The client for KAFKA_BROKERS of the app's validated environment (see `kafkaEnv`). */
  static fromEnv(defaultClientId: string): DynamicModule {
    return KafkaModule.forRootAsync({
      inject: [ConfigService],
      useFactory: (config: ConfigService<KafkaEnv, true>) => ({
        brokers: config.get('KAFKA_BROKERS', { infer: true }),
        clientId: optional(config.get('KAFKA_CLIENT_ID', { infer: true })) ?? defaultClientId,
        config: kafkaSecurity(readKafkaEnv(config)),
      }),
    });
  }
}
