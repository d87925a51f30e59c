import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export type SsfMetrics = ReturnType<typeof ssfMetrics>;

/** The transmitter's own metrics, beside the process metrics every app has. */
export function ssfMetrics(registry: Registry, queueDepths: () => Promise<Map<string, number>>) {
  const registers = [registry];
  return {
    consumed: new Counter({
      name: 'ssf_events_consumed_total',
      help: 'messages read from the revocation topic, by kind (revocation, heartbeat, invalid)',
      labelNames: ['kind'] as const,
      registers,
    }),
    queued: new Counter({
      name: 'ssf_sets_queued_total',
      help: 'SETs signed and queued for a stream, by event (session-revoked, verification)',
      labelNames: ['event'] as const,
      registers,
    }),
    pushes: new Counter({
      name: 'ssf_push_total',
      help: 'pushes of a SET to a receiver (RFC 8935), by outcome: delivered, rejected (400, dropped), failed, timeout (both retried)',
      labelNames: ['outcome'] as const,
      registers,
    }),
    polled: new Counter({
      name: 'ssf_poll_acknowledged_total',
      help: 'SETs a polling receiver (RFC 8936) acknowledged (ack) or reported as errors (setErrs)',
      labelNames: ['outcome'] as const,
      registers,
    }),
    pushSeconds: new Histogram({
      name: 'ssf_push_duration_seconds',
      help: 'time of one push, request to answer',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    deliverySeconds: new Histogram({
      name: 'ssf_delivery_delay_seconds',
      help: 'time from the revocation on the topic to the receiver’s 202 (retries included)',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    }),
    queueDepth: new Gauge({
      name: 'ssf_queue_depth',
      help: 'SETs waiting for delivery (or for a poll acknowledgement), by stream',
      labelNames: ['stream_id'] as const,
      registers,
      async collect() {
        this.reset();
        for (const [stream, depth] of await queueDepths()) this.set({ stream_id: stream }, depth);
      },
    }),
  };
}
