import type { TelemetryRecord } from './ingest.js';

/**
 * How an exported reading is written. NDJSON: one JSON object per line, the reading as the
 * telemetry query shows it plus `deviceId` and `cursor`. CSV (RFC 4180, CRLF): fixed columns,
 * then one `data.<field>` column per field the requested schema declares (all its versions
 * when only a name was given), then `data` with the reading's other fields as a JSON object
 * (every field when no schema was asked for), then `cursor`.
 */

export type ExportFormat = 'ndjson' | 'csv';

export const CONTENT_TYPES: Readonly<Record<ExportFormat, string>> = {
  ndjson: 'application/x-ndjson; charset=utf-8',
  csv: 'text/csv; charset=utf-8; header=present',
};

const FIXED = ['device_id', 'ts', 'msg_id', 'schema_id', 'seq', 'boot', 'device_ts', 'received_at', 'skew_ms'] as const;

export function ndjsonLine(r: TelemetryRecord, cursor: string): string {
  return `${JSON.stringify({
    deviceId: r.deviceId,
    msgId: r.msgId,
    schemaId: r.schemaId,
    seq: r.seq,
    boot: r.boot,
    deviceTs: r.deviceTs,
    receivedAt: r.receivedAt,
    ts: r.ts,
    skewMs: r.skewMs,
    data: r.data,
    cursor,
  })}\n`;
}

export class CsvWriter {
  readonly #fields: readonly string[];
  readonly #own: ReadonlySet<string>;

  /** `fields`: the data fields that get a column of their own, in column order. */
  constructor(fields: readonly string[]) {
    this.#fields = fields;
    this.#own = new Set(fields);
  }

  header(): string {
    return row([...FIXED, ...this.#fields.map((f) => `data.${f}`), 'data', 'cursor']);
  }

  line(r: TelemetryRecord, cursor: string): string {
    const rest: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(r.data)) if (!this.#own.has(k)) rest[k] = v;
    return row([
      r.deviceId,
      String(r.ts),
      text(r.msgId),
      r.schemaId,
      optional(r.seq),
      r.boot === null ? '' : text(r.boot),
      optional(r.deviceTs),
      String(r.receivedAt),
      optional(r.skewMs),
      ...this.#fields.map((f) => cell(r.data[f])),
      JSON.stringify(rest),
      cursor,
    ]);
  }
}

const optional = (n: number | null): string => (n === null ? '' : String(n));

/** A data value: text as it is, absent as an empty cell, anything else as JSON. */
function cell(value: unknown): string {
  if (value === undefined) return '';
  return typeof value === 'string' ? text(value) : JSON.stringify(value);
}

/**
 * Text a device chose, defused for spreadsheets: a value starting with = + - @ or a control
 * character gets a leading `'` so that opening the file does not run it as a formula.
 */
function text(value: string): string {
  return /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
}

function row(cells: readonly string[]): string {
  return `${cells.map((c) => (/[",\r\n]/.test(c) ? `"${c.replace(/"/g, '""')}"` : c)).join(',')}\r\n`;
}
