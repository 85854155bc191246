import { GroupCommit } from '@bulwark/core';
import type { TelemetryRecord, TelemetryRepository, TelemetrySink } from './ingest.js';
import type { ingestMetrics } from './metrics.js';
import type { IngestSettings } from './pipeline.js';

/** Embedded mode's sink: readings group-committed into the store, dead letters written one by one. */
export function storeSink(repo: TelemetryRepository, settings: IngestSettings, m: ReturnType<typeof ingestMetrics>): TelemetrySink {
  const writer = new GroupCommit((records: TelemetryRecord[]) => repo.insertBatch(records), {
    maxItems: settings.batchMaxItems,
    maxDelayMs: settings.batchMaxDelayMs,
    onBatch: (size, ms) => {
      m.batchSize.observe(size);
      m.batchSeconds.observe(ms / 1000);
    },
  });
  return {
    fansOut: false,
    append: (record) => writer.add(record),
    appendDeadLetter: (letter) => repo.insertDeadLetter(letter),
    drain: () => writer.drain(),
  };
}
