import { closeSync, fstatSync, ftruncateSync, openSync, readSync } from 'node:fs';
import type { Writable } from 'node:stream';
import type { Query, Session } from './client.js';
import { CliError } from './errors.js';

/**
 * A telemetry export downloaded to the end however often the connection breaks: only whole
 * lines are written out, each carries the cursor that resumes after it, and a broken
 * download is asked for again from the last cursor written, so that the output has no
 * duplicate and no gap.
 */

export type ExportFormat = 'ndjson' | 'csv';

export interface DownloadOptions {
  readonly session: Session;
  /** The export's filter and range (device|tag|schema, since, until, decrypt). */
  readonly query: Query;
  readonly format: ExportFormat;
  readonly out: Writable;
  /** Resume after this cursor (from a file an earlier download left). */
  readonly cursor?: string | undefined;
  /** The output already holds the CSV header row. */
  readonly headerWritten?: boolean;
  /** Attempts in a row that may fail without a reading received before giving up. */
  readonly retries: number;
  readonly onProgress?: ((p: DownloadProgress) => void) | undefined;
  readonly onRetry?: (attempt: number, why: string) => void;
  readonly sleep?: (ms: number) => Promise<void>;
}

export interface DownloadProgress {
  /** Readings written by this download (not counting a resumed file's earlier ones). */
  readonly readings: number;
  readonly bytes: number;
  /** Times the download was resumed after a break. */
  readonly resumed: number;
}

/** No byte for this long: the connection is taken for dead and the download resumed. */
const IDLE_MS = 60_000;
/** Server answers worth another try: it is restarting or its store is briefly away. */
const RETRYABLE = new Set(['BULWARK_CLI_UNREACHABLE', 'BULWARK_ERR_STORE_UNAVAILABLE', 'BULWARK_ERR_BUS_UNAVAILABLE', 'BULWARK_ERR_INTERNAL']);
const NDJSON_CURSOR = /"cursor":"([A-Za-z0-9_-]+)"\}\r?$/;
const CSV_CURSOR = /,([A-Za-z0-9_-]+)\r?$/;

export function cursorOf(format: ExportFormat, line: string): string | undefined {
  return (format === 'csv' ? CSV_CURSOR : NDJSON_CURSOR).exec(line)?.[1];
}

export async function downloadExport(o: DownloadOptions): Promise<DownloadProgress> {
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const progress = { readings: 0, bytes: 0, resumed: 0 };
  let cursor = o.cursor;
  let headerWritten = o.headerWritten ?? false;
  let failures = 0;
  for (;;) {
    const before = progress.readings;
    const abort = new AbortController();
    let idle = setTimeout(() => abort.abort(), IDLE_MS);
    try {
      const res = await o.session.open('/api/v1/telemetry/export', { ...o.query, format: o.format, cursor }, abort.signal);
      // A fresh CSV answer starts with its header row: written once, whatever the attempts.
      let header = o.format === 'csv' && cursor === undefined;
      let partial = '';
      const decoder = new TextDecoder();
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        clearTimeout(idle);
        idle = setTimeout(() => abort.abort(), IDLE_MS);
        partial += decoder.decode(chunk, { stream: true });
        const end = partial.lastIndexOf('\n');
        if (end < 0) continue;
        let complete = partial.slice(0, end + 1);
        partial = partial.slice(end + 1);
        if (header) {
          const headerEnd = complete.indexOf('\n') + 1;
          if (!headerWritten) await write(o.out, complete.slice(0, headerEnd));
          complete = complete.slice(headerEnd);
          header = false;
          headerWritten = true;
        }
        const lines = complete.split('\n');
        lines.pop();
        if (lines.length === 0) continue;
        const last = cursorOf(o.format, lines[lines.length - 1] as string);
        if (last === undefined) throw new CliError('BULWARK_CLI_BAD_RESPONSE', 'the export answered a line without a cursor: is this a Bulwark server of this version?');
        await write(o.out, complete);
        cursor = last;
        progress.readings += lines.length;
        progress.bytes += Buffer.byteLength(complete);
        o.onProgress?.({ ...progress });
      }
      if (partial !== '') throw new Error('the export ended in the middle of a line');
      return progress;
    } catch (err) {
      if (err instanceof CliError && !RETRYABLE.has(err.code)) throw err;
      failures = progress.readings > before ? 1 : failures + 1;
      if (failures > o.retries) throw err instanceof CliError ? err : new CliError('BULWARK_CLI_UNREACHABLE', `the export broke off ${failures} times in a row: ${(err as Error).message}`);
      progress.resumed += 1;
      o.onRetry?.(progress.resumed, err instanceof CliError ? err.message : (err as Error).message);
      // At once after a break that made progress; then 1, 2, 4 … 30 s.
      await sleep(failures === 1 ? 0 : Math.min(30_000, 1000 * 2 ** (failures - 2)));
    } finally {
      clearTimeout(idle);
    }
  }
}

function write(out: Writable, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (out.write(text, (err) => (err ? reject(err) : undefined))) resolve();
    else out.once('drain', resolve);
  });
}

/**
 * Where an interrupted download left off in `file`: a trailing partial line is cut off, and
 * the cursor is the last whole line's. Undefined cursor: no reading was written yet.
 */
export function resumePoint(file: string, format: ExportFormat): { cursor: string | undefined; headerWritten: boolean } {
  const fd = openSync(file, 'r+');
  try {
    const size = fstatSync(fd).size;
    for (let window = 64 * 1024; ; window *= 4) {
      const start = Math.max(0, size - window);
      const buf = Buffer.alloc(size - start);
      readSync(fd, buf, 0, buf.length, start);
      const end = buf.lastIndexOf(0x0a) + 1;
      // The last whole line must lie inside the window: a newline before its own, or the file's start.
      const lineStart = end > 1 ? buf.lastIndexOf(0x0a, end - 2) + 1 : 0;
      if (start > 0 && lineStart === 0) continue;
      ftruncateSync(fd, start + end);
      if (end === 0) return { cursor: undefined, headerWritten: false };
      const last = buf.subarray(lineStart, end - 1).toString('utf8');
      if (format === 'csv' && start === 0 && lineStart === 0) return { cursor: undefined, headerWritten: true };
      const cursor = cursorOf(format, last);
      if (cursor === undefined) throw new CliError('BULWARK_CLI_FILE', `${file} does not end with a ${format === 'csv' ? 'CSV row' : 'line'} of an export (no cursor to resume from): was it written by bulwark telemetry export in this format?`);
      return { cursor, headerWritten: format === 'csv' };
    }
  } finally {
    closeSync(fd);
  }
}
