import {
  type DynamicModule,
  Inject,
  Injectable,
  Logger,
  Module,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { AsyncOptions } from '@app/config/nest';
import type { Admin, Kafka } from 'kafkajs';
import { optional, type KafkaEnv } from '@app/config';
import type { ReadinessCheck } from '@app/observability';
import { createKafka, type KafkaClientOptions } from '../kafka-client';
import { kafkaSecurity, readKafkaEnv } from '../kafka-security';

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

@Module({})
export class KafkaModule {
  static forRootAsync(options: AsyncOptions<KafkaClientOptions>): DynamicModule {
    return {
      module: KafkaModule,
      global: true,
      providers: [
        {
          provide: KAFKA,
          useFactory: async (...args: never[]) =>
            createKafka({ logger: new Logger('KafkaJS'), ...(await options.useFactory(...args)) }),
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
