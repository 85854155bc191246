import type { TraceRecord } from './trace.js';

export interface TracingSettings {
  /** One message in this many is traced (0: only those whose device asked, with a sampled `traceparent`). */
  readonly sampleEvery: number;
  /** Traces recorded per second on a node at most (device-sampled ones included); the rest are counted and skipped. */
  readonly maxPerSecond: number;
  /** OTLP/HTTP endpoint the spans are exported to (empty: none; the SDK is not loaded). */
  readonly otelEndpoint: string;
  /** Hours stored traces are kept. */
  readonly retentionHours: number;
}

/** Where each node keeps the spans it recorded, for `bulwark telemetry trace`. */
export interface TraceRepository {
  insertBatch(records: readonly TraceRecord[], recordedAt: number): Promise<void>;
  /** Every node's spans of one stored message (a reading's id is unique per device). */
  forMessage(deviceId: string, msgId: string): Promise<TraceRecord[]>;
  deleteBefore(before: number): Promise<number>;
}

/** Sends finished spans on (OTLP); export failures are the exporter's to count, never the caller's. */
export interface SpanExporter {
  export(records: readonly TraceRecord[]): void;
  shutdown(): Promise<void>;
}
