import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { WriterMetrics } from './store-writer.js';

/** The telemetry stream's metrics on this node. `lag` is the node's last measurement (every 2 s). */
export function streamMetrics(registry: Registry, lag: () => number | undefined, refusing: () => boolean): WriterMetrics & { malformed(): void; append(seconds: number): void } {
  const appendSeconds = new Histogram({
    name: 'bulwark_stream_append_seconds',
    help: "Time from a reading leaving the ingest pipeline to the telemetry stream's acknowledgement of it (the device is acknowledged right after)",
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const rows = new Counter({ name: 'bulwark_stream_writer_rows_total', help: 'Readings the store writers on this node took from the telemetry stream, by result (inserted, repeat: already stored)', labelNames: ['result'], registers: [registry] });
  const batchSize = new Histogram({ name: 'bulwark_stream_writer_batch_size', help: 'Readings per store-writer batch (one COPY, one transaction, one stream acknowledgement)', buckets: [1, 10, 100, 500, 1000, 2000, 5000, 10000], registers: [registry] });
  const batchSeconds = new Histogram({ name: 'bulwark_stream_writer_batch_seconds', help: 'Time to store one store-writer batch in PostgreSQL', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [registry] });
  const failures = new Counter({ name: 'bulwark_stream_writer_failures_total', help: 'Store-writer batches the store refused (retried until stored) and consumer restarts', registers: [registry] });
  const resets = new Counter({ name: 'bulwark_stream_writer_resets_total', help: 'Store writers that started again from the last stored reading after a delivery went missing', registers: [registry] });
  const malformed = new Counter({ name: 'bulwark_stream_malformed_total', help: 'Messages on the telemetry or dead-letter stream that were not a reading or a dead letter (not stored)', registers: [registry] });
  new Gauge({
    name: 'bulwark_stream_writer_lag_messages',
    help: 'Readings in the telemetry stream the store writers have not stored yet (the whole cluster, measured every 2 s; -1 when not known: NATS did not answer)',
    registers: [registry],
    collect() {
      this.set(lag() ?? -1);
    },
  });
  new Gauge({
    name: 'bulwark_stream_refusing',
    help: '1 while this node refuses new readings because unstored ones fill most of the telemetry stream (stream.maxBytes), else 0',
    registers: [registry],
    collect() {
      this.set(refusing() ? 1 : 0);
    },
  });
  const inserted = rows.labels('inserted');
  const repeat = rows.labels('repeat');
  return {
    rows: (n, repeats) => {
      inserted.inc(n);
      if (repeats > 0) repeat.inc(repeats);
    },
    batch: (size, seconds) => {
      batchSize.observe(size);
      batchSeconds.observe(seconds);
    },
    failure: () => failures.inc(),
    reset: () => resets.inc(),
    malformed: () => malformed.inc(),
    append: (seconds) => appendSeconds.observe(seconds),
  };
}
