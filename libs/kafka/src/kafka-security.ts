import { readFileSync } from 'node:fs';
import { InvalidEnvironmentError, type KafkaEnv } from '@app/config';
import type { KafkaConfig, SASLOptions } from 'kafkajs';

/** What a KafkaJS client needs to reach brokers that require TLS and/or SASL. */
export type KafkaSecurity = Pick<KafkaConfig, 'ssl' | 'sasl'>;

function readSecret(variable: string, file: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (error) {
    throw new InvalidEnvironmentError(
      `Invalid environment:\n  ${variable}: cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
}

/** What reads an app's validated configuration (Nest's ConfigService does). */
export interface ConfigReader {
  get(key: string, options?: { infer: true }): unknown;
}

/** The Kafka variables of an app's validated configuration. */
export function readKafkaEnv(config: ConfigReader): KafkaEnv {
  const get = <K extends keyof KafkaEnv>(key: K) => config.get(key, { infer: true }) as KafkaEnv[K];
  return {
    KAFKA_BROKERS: get('KAFKA_BROKERS'),
    KAFKA_CLIENT_ID: get('KAFKA_CLIENT_ID'),
    KAFKA_SSL: get('KAFKA_SSL'),
    KAFKA_SSL_CA_FILE: get('KAFKA_SSL_CA_FILE'),
    KAFKA_SASL_MECHANISM: get('KAFKA_SASL_MECHANISM'),
    KAFKA_SASL_USERNAME: get('KAFKA_SASL_USERNAME'),
    KAFKA_SASL_PASSWORD: get('KAFKA_SASL_PASSWORD'),
    KAFKA_SASL_PASSWORD_FILE: get('KAFKA_SASL_PASSWORD_FILE'),
  };
}

/**
 * TLS and SASL settings from the validated environment (KAFKA_SSL, KAFKA_SSL_CA_FILE,
 * KAFKA_SASL_*), read once at start. Nothing set: plaintext, no authentication (the local
 * broker); see docs/ARCHITECTURE.md for the ACLs each app needs on a secured cluster.
 */
export function kafkaSecurity(env: Partial<KafkaEnv>): KafkaSecurity {
  const security: KafkaSecurity = {};
  if (env.KAFKA_SSL_CA_FILE !== undefined)
    security.ssl = { ca: [readSecret('KAFKA_SSL_CA_FILE', env.KAFKA_SSL_CA_FILE)] };
  else if (env.KAFKA_SSL) security.ssl = true;
  const mechanism = env.KAFKA_SASL_MECHANISM;
  if (mechanism !== undefined) {
    const username = env.KAFKA_SASL_USERNAME ?? '';
    const password =
      env.KAFKA_SASL_PASSWORD ??
      readSecret('KAFKA_SASL_PASSWORD_FILE', env.KAFKA_SASL_PASSWORD_FILE ?? '');
    security.sasl = { mechanism, username, password } as SASLOptions;
  }
  return security;
}
