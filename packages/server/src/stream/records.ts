import type { TelemetryRecord } from '../ingest/index.js';

const decoder = new TextDecoder();

/** A reading on the stream: a stored reading, and the trace context of a traced one. */
export type StreamRecord = TelemetryRecord & { readonly traceparent?: string };
const numOrNull = (v: unknown): v is number | null => v === null || (typeof v === 'number' && Number.isFinite(v));
const strOrNull = (v: unknown): v is string | null => v === null || typeof v === 'string';

/**
 * A reading as the stream carries it (JSON of a stored reading, docs/reference/stream.md),
 * checked field by field: anything else on the subject is not stored and is counted.
 */
export function parseRecord(data: Uint8Array): StreamRecord | undefined {
  let r: Partial<Record<keyof StreamRecord, unknown>>;
  try {
    r = JSON.parse(decoder.decode(data)) as typeof r;
  } catch {
    return undefined;
  }
  if (typeof r !== 'object' || r === null) return undefined;
  const ok =
    typeof r.deviceId === 'string' &&
    typeof r.msgId === 'string' &&
    typeof r.schemaId === 'string' &&
    numOrNull(r.seq) &&
    strOrNull(r.boot) &&
    numOrNull(r.deviceTs) &&
    typeof r.receivedAt === 'number' &&
    typeof r.ts === 'number' &&
    numOrNull(r.skewMs) &&
    typeof r.data === 'object' &&
    r.data !== null &&
    !Array.isArray(r.data);
  if (!ok) return undefined;
  // A traced reading's context (`traceparent`) is kept only when it is a string; parseTraceparent checks its form.
  if (r.traceparent !== undefined && typeof r.traceparent !== 'string') delete r.traceparent;
  return r as StreamRecord;
}
