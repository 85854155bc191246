export { IngestService } from './pipeline.js';
export type { IngestSettings } from './pipeline.js';
export type { DeadLetter, DeadLetterFilter, DeadLetterReason, IngestRequest, IngestResult, TelemetryQuery, TelemetryRecord, TelemetryRepository, Transport } from './ingest.js';
export { RetentionJob } from './retention.js';
export type { DeletionReceipt, RetentionSettings } from './retention.js';
