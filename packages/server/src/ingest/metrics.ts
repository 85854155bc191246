import { Counter, Histogram, type Registry } from 'prom-client';

export function ingestMetrics(registry: Registry) {
  return {
    messages: new Counter({ name: 'bulwark_ingest_messages_total', help: 'Telemetry messages by transport and outcome (stored, duplicate, dead_lettered, shed)', labelNames: ['transport', 'outcome'] as const, registers: [registry] }),
    deadLetters: new Counter({ name: 'bulwark_ingest_dead_letters_total', help: 'Messages sent to the dead-letter store, by reason', labelNames: ['reason'] as const, registers: [registry] }),
    lost: new Counter({ name: 'bulwark_ingest_sequence_lost_total', help: 'Messages missing from per-boot sequences (gaps)', registers: [registry] }),
    outOfOrder: new Counter({ name: 'bulwark_ingest_sequence_out_of_order_total', help: 'Messages whose sequence number went backwards or repeated', registers: [registry] }),
    implausibleClock: new Counter({ name: 'bulwark_ingest_implausible_clock_total', help: 'Messages whose device time could not be believed and was replaced', registers: [registry] }),
    skewedClocks: new Counter({ name: 'bulwark_ingest_skewed_clocks_total', help: 'Times a device clock estimate went past ingest.maxClockSkewMs', registers: [registry] }),
    batchSize: new Histogram({ name: 'bulwark_ingest_batch_size', help: 'Readings per group-commit transaction', buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500], registers: [registry] }),
    batchSeconds: new Histogram({ name: 'bulwark_ingest_batch_seconds', help: 'Time to make one batch durable', buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25], registers: [registry] }),
  };
}

export type IngestMetrics = ReturnType<typeof ingestMetrics>;
