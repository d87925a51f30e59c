// Framework-free: the KafkaJS client, TLS/SASL from the environment, topic provisioning.
// The NestJS module is `@app/kafka/nest`.
export * from './kafka-client';
export * from './kafka-security';
export * from './seed-brokers';
export * from './topics';
