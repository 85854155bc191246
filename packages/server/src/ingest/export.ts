import type { TelemetryRecord } from './ingest.js';

/**
 * Telemetry export: a time range of stored readings for one device, a tag or a schema,
 * streamed page by page in a fixed order (device id, then normalised time, then message id),
 * so that a cursor naming the last reading sent resumes without a duplicate or a gap.
 */

/** Where a reading sits in the export order. */
export interface ExportPosition {
  readonly deviceId: string;
  readonly ts: number;
  readonly msgId: string;
}

/** Which readings: one device, the devices that carry a tag now, or some versions of a schema. */
export type ExportFilter = { readonly kind: 'device'; readonly deviceId: string } | { readonly kind: 'tag'; readonly tag: string } | { readonly kind: 'schema'; readonly schemaIds: readonly string[] };

export interface ExportPageQuery {
  readonly filter: ExportFilter;
  /** Normalised time, inclusive. */
  readonly sinceMs: number;
  /** Normalised time, exclusive. */
  readonly untilMs: number;
  /**
   * Only readings received at or before this time: the moment the export began, so that a
   * resumed export reads the same set as the first request did.
   */
  readonly receivedUntilMs: number;
  /** Only readings strictly after this position. */
  readonly after?: ExportPosition;
  readonly limit: number;
}

/** The store's half of an export (a port of the ingest context; SQL adapters in store/sql). */
export interface TelemetryExportSource {
  /** Readings matching the query in export order (device id, ts, message id), at most `limit`. */
  exportPage(q: ExportPageQuery): Promise<TelemetryRecord[]>;
}

export const positionOf = (r: TelemetryRecord): ExportPosition => ({ deviceId: r.deviceId, ts: r.ts, msgId: r.msgId });
