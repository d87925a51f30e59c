import { Logger } from '@nestjs/common';
import { Kafka, logLevel, type KafkaConfig, type LogEntry } from 'kafkajs';

export interface KafkaClientOptions {
  brokers: string[];
  clientId: string;
  /** Overrides for KafkaJS; the defaults favour fast failure detection on one machine. */
  config?: Partial<KafkaConfig>;
}

const LEVEL_NAMES: Record<number, 'error' | 'warn' | 'log' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'log',
  [logLevel.DEBUG]: 'debug',
};

/** Sends KafkaJS's own log lines through the Nest logger (JSON in the apps). */
function nestLogCreator() {
  return () => {
    const logger = new Logger('KafkaJS');
    return ({ level, log }: LogEntry) => {
      const { message, ...extra } = log;
      const method = LEVEL_NAMES[level] ?? 'log';
      logger[method](`${message} ${JSON.stringify(extra)}`);
    };
  };
}

/** A KafkaJS client, framework-free: usable from Nest providers, scripts and tests. */
export function createKafka({ brokers, clientId, config }: KafkaClientOptions): Kafka {
  return new Kafka({
    clientId,
    brokers,
    connectionTimeout: 3_000,
    requestTimeout: 10_000,
    logLevel: logLevel.WARN,
    logCreator: nestLogCreator(),
    retry: { initialRetryTime: 100, maxRetryTime: 2_000, retries: 8 },
    ...config,
  });
}
