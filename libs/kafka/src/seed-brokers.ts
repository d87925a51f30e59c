/**
 * KAFKA_BROKERS as KafkaJS's `brokers` function: one broker at each call, the next one each
 * time. KafkaJS asks for the list whenever it opens a seed connection, and a new client starts
 * at the first broker of the list; it moves on to another only after a connection error, never
 * after a timeout. A broker that accepts connections and does not answer (paused, or behind a
 * network partition) would be the seed of every new producer and hold each one up until it
 * is given up; so the producer the sink makes after a failure starts at another broker, and
 * so does the consumer a revocation guard makes in place of one stuck on such a broker.
 */
export function rotatingSeeds(brokers: readonly string[]): () => string[] {
  if (brokers.length === 0) throw new Error('no Kafka broker given');
  let next = 0;
  return () => {
    const broker = brokers[next % brokers.length] as string;
    next += 1;
    return [broker];
  };
}
