import { createHash } from 'node:crypto';
import { PlatformError } from '@bulwark/core';
import type { ExportPosition } from './export.js';

/**
 * What an export request asks for, checked: exactly one filter, a time range, and where to
 * resume. Every refusal is BULWARK_ERR_EXPORT_INVALID with `details.reason`.
 */

export type ExportReason = 'filter_missing' | 'filter_conflict' | 'time_missing' | 'time_invalid' | 'range_empty' | 'cursor_invalid' | 'cursor_mismatch';

export interface ExportParams {
  readonly device?: string | undefined;
  readonly tag?: string | undefined;
  readonly schema?: string | undefined;
  readonly since?: string | undefined;
  readonly until?: string | undefined;
  readonly cursor?: string | undefined;
}

/** The filter as asked (a schema is still `name` or `name@version` here). */
export type RequestedFilter = { readonly kind: 'device' | 'tag' | 'schema'; readonly value: string };

export interface ExportRequest {
  readonly filter: RequestedFilter;
  readonly sinceMs: number;
  readonly untilMs: number;
  /** Set when resuming: the first request's moment and the last reading it sent. */
  readonly resume?: { readonly asOfMs: number; readonly after: ExportPosition };
}

/** Largest time the API accepts (the last millisecond a JavaScript Date can hold). */
const MAX_TIME_MS = 8_640_000_000_000_000;
const EPOCH_MS = /^\d{1,16}$/;
/** A date, or a date and time with seconds optional, fractions optional, and a zone (Z or ±hh:mm) required. */
const ISO_8601 = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2}))?$/;
const CURSOR_VERSION = 1;

export function exportError(reason: ExportReason, message: string, details: Record<string, unknown> = {}): PlatformError {
  return new PlatformError('BULWARK_ERR_EXPORT_INVALID', message, { details: { reason, ...details } });
}

/** Epoch milliseconds, or ISO 8601 with a zone (a bare date is midnight UTC). */
export function parseTime(name: 'since' | 'until', text: string | undefined): number {
  if (text === undefined || text === '') throw exportError('time_missing', `${name} is required (ISO 8601, e.g. 2026-01-31T00:00:00Z, or epoch milliseconds)`, { param: name });
  const ms = EPOCH_MS.test(text) ? Number(text) : ISO_8601.test(text) ? Date.parse(text) : Number.NaN;
  if (!Number.isSafeInteger(ms) || ms < 0 || ms > MAX_TIME_MS) {
    throw exportError('time_invalid', `${name} "${text.slice(0, 40)}" is not a time from 1970 on: give ISO 8601 with a zone (2026-01-31T12:00:00Z, 2026-01-31) or epoch milliseconds`, { param: name });
  }
  return ms;
}

export function parseExportParams(p: ExportParams): ExportRequest {
  const given = (['device', 'tag', 'schema'] as const).filter((k) => p[k] !== undefined);
  if (given.length === 0) throw exportError('filter_missing', 'say what to export: one of device, tag or schema');
  if (given.length > 1) throw exportError('filter_conflict', `give one of device, tag or schema, not ${given.join(' and ')}`, { given });
  const kind = given[0] as RequestedFilter['kind'];
  const filter: RequestedFilter = { kind, value: p[kind] as string };
  const sinceMs = parseTime('since', p.since);
  const untilMs = parseTime('until', p.until);
  if (untilMs <= sinceMs) throw exportError('range_empty', `until (${new Date(untilMs).toISOString()}) must be later than since (${new Date(sinceMs).toISOString()})`, { sinceMs, untilMs });
  const request: ExportRequest = { filter, sinceMs, untilMs };
  return p.cursor === undefined ? request : { ...request, resume: decodeCursor(p.cursor, fingerprint(request)) };
}

/** Ties a cursor to the filter and range it was made for. */
function fingerprint(r: Pick<ExportRequest, 'filter' | 'sinceMs' | 'untilMs'>): string {
  return createHash('sha256').update(`${r.filter.kind}\u0000${r.filter.value}\u0000${r.sinceMs}\u0000${r.untilMs}`).digest('base64url').slice(0, 11);
}

/**
 * The cursor that resumes an export right after `at`: opaque to callers (base64url of a
 * versioned JSON array), it carries the first request's moment so that a resumed export
 * reads the same set of readings.
 */
export function makeCursorFactory(r: Pick<ExportRequest, 'filter' | 'sinceMs' | 'untilMs'>, asOfMs: number): (at: ExportPosition) => string {
  const prefix = JSON.stringify([CURSOR_VERSION, asOfMs, fingerprint(r)]).slice(0, -1);
  return (at) => Buffer.from(`${prefix},${JSON.stringify(at.deviceId)},${at.ts},${JSON.stringify(at.msgId)}]`).toString('base64url');
}

function decodeCursor(text: string, expected: string): NonNullable<ExportRequest['resume']> {
  let parts: unknown;
  try {
    parts = /^[A-Za-z0-9_-]+$/.test(text) ? JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) : undefined;
  } catch {
    parts = undefined;
  }
  const valid = Array.isArray(parts) && parts.length === 6 && parts[0] === CURSOR_VERSION && Number.isSafeInteger(parts[1]) && typeof parts[2] === 'string' && typeof parts[3] === 'string' && Number.isSafeInteger(parts[4]) && typeof parts[5] === 'string';
  if (!valid) throw exportError('cursor_invalid', 'cursor is not one this server gave out: pass the cursor of the last line (NDJSON) or row (CSV) received, unchanged');
  const [, asOfMs, fp, deviceId, ts, msgId] = parts as [number, number, string, string, number, string];
  if (fp !== expected) throw exportError('cursor_mismatch', 'cursor belongs to an export with another filter or time range: resume with the same device, tag or schema, since and until');
  return { asOfMs, after: { deviceId, ts, msgId } };
}
