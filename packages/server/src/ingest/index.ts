export { IngestService } from './pipeline.js';
export type { IngestSettings } from './pipeline.js';
export { ROLLUP_BUCKETS_MS } from './ingest.js';
export type { DeadLetter, DeadLetterFilter, DeadLetterProtection, DeadLetterReason, DeadLetterView, Sensitivity, IngestRequest, IngestResult, Rollup, RollupQuery, TelemetryQuery, TelemetryRecord, TelemetryRepository, Transport } from './ingest.js';
export { RetentionJob } from './retention.js';
export type { DeletionReceipt, RetentionSettings } from './retention.js';
