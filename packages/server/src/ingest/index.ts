export { IngestService } from './pipeline.js';
export type { IngestSettings } from './pipeline.js';
export { ROLLUP_BUCKETS_MS } from './ingest.js';
export type {
  DeadLetter,
  DeadLetterFilter,
  DeadLetterPurge,
  DeadLetterProtection,
  DeadLetterReason,
  DeadLetterView,
  Sensitivity,
  IngestRequest,
  IngestResult,
  Rollup,
  RollupQuery,
  TelemetryQuery,
  TelemetryRecord,
  TelemetryRepository,
  TelemetrySink,
  Transport,
} from './ingest.js';
export type { FeedEntry, FeedFilter, FeedPage, TelemetryFeed } from './feed.js';
export { RetentionJob } from './retention.js';
export type { ExportFilter, ExportPageQuery, ExportPosition, TelemetryExportSource } from './export.js';
export { TelemetryExporter } from './exporter.js';
export { exportRoutes } from './export-routes.js';
export type { DeletionReceipt, RetentionSettings } from './retention.js';
export { deviceSet } from './live-filter.js';
export { parseTime } from './export-request.js';
