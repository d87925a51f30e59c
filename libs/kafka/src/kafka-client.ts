import { Kafka, logLevel, type KafkaConfig, type LogEntry } from 'kafkajs';

/** Where KafkaJS's own log lines go: a logger with the usual three levels (and debug). */
export interface KafkaLogger {
  log(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  debug?(message: string): void;
}

export interface KafkaClientOptions {
  /** The seed brokers, or KafkaJS's function giving them at each seed connection. */
  brokers: KafkaConfig['brokers'];
  clientId: string;
  /** Overrides for KafkaJS (TLS and SASL among them); the defaults favour fast failure detection. */
  config?: Partial<KafkaConfig>;
  /** Receives KafkaJS's warnings and errors (default: KafkaJS's own console output). */
  logger?: KafkaLogger;
}

/** KafkaJS's log lines, through `logger`, one line each with their details as JSON. */
export function kafkaLogCreator(logger: KafkaLogger): KafkaConfig['logCreator'] {
  return () =>
    ({ level, log }: LogEntry) => {
      const { message, ...extra } = log;
      const line = `${message} ${JSON.stringify(extra)}`;
      if (level === logLevel.ERROR) logger.error(line);
      else if (level === logLevel.WARN) logger.warn(line);
      else if (level === logLevel.INFO) logger.log(line);
      else logger.debug?.(line);
    };
}

/** A KafkaJS client, framework-free: usable from Nest providers, scripts, tests and other apps. */
export function createKafka({ brokers, clientId, config, logger }: KafkaClientOptions): Kafka {
  return new Kafka({
    clientId,
    brokers,
    connectionTimeout: 3_000,
    requestTimeout: 10_000,
    logLevel: logLevel.WARN,
    ...(logger ? { logCreator: kafkaLogCreator(logger) } : {}),
    retry: { initialRetryTime: 100, maxRetryTime: 2_000, retries: 8 },
    ...config,
  });
}
