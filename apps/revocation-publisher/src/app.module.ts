import { configFromEnv } from '@app/config/nest';
import { Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { ClientsModule, Transport } from '@nestjs/microservices';
import { Partitioners } from 'kafkajs';
import { kafkaSecurity, readKafkaEnv, rotatingSeeds } from '@app/kafka';
import { KafkaModule, KafkaReadiness } from '@app/kafka/nest';
import { ObservabilityModule } from '@app/observability';
import { RedisModule, RedisReadiness } from '@app/redis';
import { revocationPublisherEnv, type RevocationPublisherEnv } from './config';
import { HeartbeatService } from './heartbeat/heartbeat.service';
import { KafkaRevocationSink, REVOCATION_KAFKA_CLIENT } from './kafka/kafka-revocation.sink';
import { TopicProvisioner } from './kafka/topic-provisioner';
import { OutboxStore } from './outbox/outbox.store';
import { PublisherMetrics } from './publisher.metrics';
import { outboxSettings, topicSettings } from './publisher.settings';
import { OutboxRelay } from './relay/outbox-relay.service';
import { RelayReadiness } from './relay/relay-readiness';
import { REVOCATION_SINK } from './relay/revocation-sink';

/** Relays revocations from the Redis outbox to Kafka, and heartbeats every partition. */
@Module({
  imports: [
    configFromEnv(revocationPublisherEnv),
    ConfigModule.forFeature(outboxSettings),
    ConfigModule.forFeature(topicSettings),
    RedisModule.fromEnv(),
    KafkaModule.fromEnv('revocation-publisher'),
    ObservabilityModule.forRoot({
      serviceName: 'revocation-publisher',
      readiness: [RedisReadiness, KafkaReadiness, TopicProvisioner, RelayReadiness],
    }),
    ClientsModule.registerAsync([
      {
        name: REVOCATION_KAFKA_CLIENT,
        inject: [ConfigService],
        useFactory: (config: ConfigService<RevocationPublisherEnv, true>) => ({
          transport: Transport.KAFKA,
          options: {
            client: {
              clientId: `${config.get('KAFKA_CLIENT_ID', { infer: true }) ?? 'revocation-publisher'}-producer`,
              brokers: rotatingSeeds(config.get('KAFKA_BROKERS', { infer: true })),
              ...kafkaSecurity(readKafkaEnv(config)),
              connectionTimeout: 3_000,
              requestTimeout: 10_000,
              retry: { initialRetryTime: 100, maxRetryTime: 1_000, retries: 3 },
            },
            producer: {
              idempotent: true,
              maxInFlightRequests: 1,
              allowAutoTopicCreation: false,
              // Java-compatible murmur2: the same key lands on the same partition in any client.
              createPartitioner: Partitioners.DefaultPartitioner,
            },
            producerOnlyMode: true,
            send: { acks: -1 },
          },
        }),
      },
    ]),
  ],
  providers: [
    OutboxStore,
    PublisherMetrics,
    TopicProvisioner,
    KafkaRevocationSink,
    { provide: REVOCATION_SINK, useExisting: KafkaRevocationSink },
    OutboxRelay,
    RelayReadiness,
    HeartbeatService,
  ],
})
export class AppModule {}
