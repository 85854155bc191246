import { Readable } from 'node:stream';
import { type Clock, type Logger, PlatformError } from '@bulwark/core';
import type { GroupSelector, RegistryService } from '../registry/index.js';
import { deviceSet } from './live-filter.js';
import type { SchemaService } from '../schemas/index.js';
import { type ExportFilter, type ExportPosition, type TelemetryExportSource, positionOf } from './export.js';
import { CsvWriter, type ExportFormat, ndjsonLine } from './export-format.js';
import { type ExportParams, type ExportRequest, makeCursorFactory, parseExportParams } from './export-request.js';
import type { TelemetryRecord } from './ingest.js';

/**
 * Bytes one page of an export should come to: the next page asks for as many readings as the
 * pages so far averaged to this size, so that what an export holds in memory (a page, and the
 * stream's buffer) stays about the same whatever the size of its readings.
 */
export const EXPORT_PAGE_BYTES = 512 * 1024;
/** Readings in the first page, and the fewest and most in any page. */
const PAGE_ROWS = { first: 100, min: 10, max: 1000 } as const;
/** Bytes the response stream may hold before it stops asking for the next page. */
const STREAM_BUFFER_BYTES = 64 * 1024;
/** What an encrypted field shows unless revealed; mask and hash fields are shown as stored. */
const MASKED = '***';

export interface ExporterDeps {
  readonly source: TelemetryExportSource;
  readonly schemas: SchemaService;
  readonly registry: RegistryService;
  /** Decrypts a value stored as `enc:…` for its place (device/field). */
  readonly openValue: (text: string, context: string) => Promise<Buffer>;
  readonly clock: Clock;
  /** Device ids in the exported rows become this (privacy.pseudonymise names exports); absent: real ids. */
  readonly deviceShown?: (deviceId: string) => string;
  /** With deviceShown: cursors sealed, since a plain one carries the real device id. */
  readonly cursors?: { seal(cursor: string): string; open(sealed: string): string | undefined };
}

/** A checked export, ready to stream. */
export interface ExportPlan {
  readonly request: ExportRequest;
  readonly filter: ExportFilter;
  readonly format: ExportFormat;
  /** Show encrypted fields in clear (the caller holds telemetry:decrypt and asked). */
  readonly reveal: boolean;
  /** The export's moment: only readings received by then are in it. */
  readonly asOfMs: number;
  /** CSV: data fields with a column of their own (those of the requested schema). */
  readonly columns: readonly string[];
  /** The caller is limited to device groups: only these devices' readings are in it. */
  readonly allowed?: ReadonlySet<string>;
}

/** Streams stored readings for a device, a tag or a schema; see export.ts. */
export class TelemetryExporter {
  constructor(private readonly deps: ExporterDeps) {}

  /**
   * Checks the request, and that its device or schema exists (BULWARK_ERR_NOT_FOUND).
   * `within`: the caller is limited to these device groups (a device outside them is not found).
   */
  async plan(params: ExportParams, format: ExportFormat, reveal: boolean, within?: readonly GroupSelector[]): Promise<ExportPlan> {
    const request = parseExportParams(this.#openedCursor(params));
    const { kind, value } = request.filter;
    const allowed = within === undefined ? undefined : await deviceSet(this.deps.registry, { within });
    let filter: ExportFilter;
    let columns: string[] = [];
    if (kind === 'device') {
      if (allowed && !allowed.has(value)) throw new PlatformError('BULWARK_ERR_NOT_FOUND', `no device ${value}`);
      await this.deps.registry.get(value);
      filter = { kind, deviceId: value };
    } else if (kind === 'tag') filter = { kind, tag: value };
    else {
      const [name, version] = value.split('@') as [string, string | undefined];
      const versions = version === undefined ? (await this.deps.schemas.list()).filter((s) => s.name === name).sort((a, b) => a.version - b.version) : [await this.deps.schemas.get(name, Number(version))];
      if (versions.length === 0) throw new PlatformError('BULWARK_ERR_NOT_FOUND', `no schema named ${name}`);
      filter = { kind, schemaIds: versions.map((s) => `${s.name}@${s.version}`) };
      columns = [...new Set(versions.flatMap((s) => Object.keys(s.document.properties)))];
    }
    return { request, filter, format, reveal, asOfMs: request.resume?.asOfMs ?? this.deps.clock.now(), columns, ...(allowed ? { allowed } : {}) };
  }

  /** The export as a byte stream that reads the next page only when the reader has taken the last. */
  stream(plan: ExportPlan, log: Logger): Readable {
    return Readable.from(this.#chunks(plan, log), { objectMode: false, highWaterMark: STREAM_BUFFER_BYTES });
  }

  async *#chunks(plan: ExportPlan, log: Logger): AsyncGenerator<string> {
    const { request, filter, asOfMs } = plan;
    const plainCursorAt = makeCursorFactory(request, asOfMs);
    const seal = this.deps.cursors;
    const cursorAt = seal ? (at: ExportPosition) => seal.seal(plainCursorAt(at)) : plainCursorAt;
    const csv = plan.format === 'csv' ? new CsvWriter(plan.columns) : undefined;
    const failures = { count: 0 };
    // A resumed CSV export has no header, so that it appends to what was received.
    if (csv && !request.resume) yield csv.header();
    let after = request.resume?.after;
    let limit: number = PAGE_ROWS.first;
    const sent = { rows: 0, bytes: 0 };
    try {
      for (;;) {
        const page = await this.deps.source.exportPage({
          filter,
          sinceMs: request.sinceMs,
          untilMs: request.untilMs,
          receivedUntilMs: asOfMs,
          limit,
          ...(after ? { after } : {}),
        });
        let chunk = '';
        for (const stored of page) {
          if (plan.allowed && !plan.allowed.has(stored.deviceId)) continue;
          const r = await this.#shown(stored, plan.reveal, failures);
          const cursor = cursorAt(positionOf(r));
          const row = this.deps.deviceShown ? { ...r, deviceId: this.deps.deviceShown(r.deviceId) } : r;
          chunk += csv ? csv.line(row, cursor) : ndjsonLine(row, cursor);
        }
        if (chunk !== '') yield chunk;
        const last = page[page.length - 1];
        if (page.length < limit || !last) return;
        after = positionOf(last);
        sent.rows += page.length;
        sent.bytes += chunk.length;
        limit = Math.min(PAGE_ROWS.max, Math.max(PAGE_ROWS.min, Math.floor(EXPORT_PAGE_BYTES / (sent.bytes / sent.rows))));
      }
    } finally {
      if (failures.count > 0) log.warn({ values: failures.count }, 'telemetry export: encrypted values that did not decrypt were exported masked');
    }
  }

  /** The params with a sealed cursor opened; one that does not open is left for the parser to refuse. */
  #openedCursor(params: ExportParams): ExportParams {
    const seal = this.deps.cursors;
    if (!seal || params.cursor === undefined) return params;
    return { ...params, cursor: seal.open(params.cursor) ?? '!' };
  }

  /** The reading with its encrypted fields masked, or decrypted when revealing. */
  async #shown(r: TelemetryRecord, reveal: boolean, failures: { count: number }): Promise<TelemetryRecord> {
    const sensitive = await this.deps.schemas.sensitiveFields(r.schemaId);
    let data: Record<string, unknown> | undefined;
    for (const [field, mode] of sensitive) {
      const value = r.data[field];
      if (mode !== 'encrypt' || value === undefined) continue;
      data ??= { ...r.data };
      data[field] = MASKED;
      if (!reveal || typeof value !== 'string' || !value.startsWith('enc:')) continue;
      try {
        data[field] = JSON.parse((await this.deps.openValue(value, `${r.deviceId}/${field}`)).toString('utf8')) as unknown;
      } catch {
        failures.count += 1;
      }
    }
    return data ? { ...r, data } : r;
  }
}
