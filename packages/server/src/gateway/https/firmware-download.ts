import { createReadStream } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Counter, Gauge, type Registry } from 'prom-client';

/** Where a device's firmware lives, if it may fetch it (it has a live update job for it). */
export interface FirmwareSource {
  download(deviceId: string, artifactId: string): Promise<{ readonly path: string; readonly size: number; readonly sha256: string } | undefined>;
}

export const FIRMWARE_PATH = /^\/v1\/firmware\/([A-Za-z0-9_]{1,64})$/;

/** One `bytes=` range (first-last, first-, or -suffix) within `size`; null when unsatisfiable or not a single range. */
export function parseRange(header: string, size: number): { start: number; end: number } | null {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return null;
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return null;
  return { start, end };
}

export function firmwareMetrics(registry: Registry) {
  return {
    bytes: new Counter({ name: 'bulwark_firmware_bytes_served_total', help: 'Firmware image bytes sent to devices over HTTPS', registers: [registry] }),
    requests: new Counter({ name: 'bulwark_firmware_downloads_total', help: 'Firmware download requests by result (full, partial, unsatisfiable, refused)', labelNames: ['result'] as const, registers: [registry] }),
    active: new Gauge({ name: 'bulwark_firmware_downloads_active', help: 'Firmware downloads being sent now (a cut one until the server sees its connection close)', registers: [registry] }),
  };
}

/**
 * Streams an image, whole (200) or one range of it (206 with Content-Range), so that a
 * device resumes a cut download where it stopped. A range outside the image gets 416 with
 * `Content-Range: bytes *\/size`. Every byte written is counted.
 */
export function serveFirmware(req: IncomingMessage, res: ServerResponse, file: { path: string; size: number; sha256: string }, m: ReturnType<typeof firmwareMetrics>): Promise<number> {
  const rangeHeader = req.headers.range;
  const range = rangeHeader === undefined ? { start: 0, end: file.size - 1 } : parseRange(rangeHeader, file.size);
  const common = { 'accept-ranges': 'bytes', 'cache-control': 'no-store', etag: `"${file.sha256}"` };
  if (!range) {
    m.requests.inc({ result: 'unsatisfiable' });
    res.writeHead(416, { ...common, 'content-range': `bytes */${file.size}`, 'content-length': 0 });
    res.end();
    return Promise.resolve(416);
  }
  const partial = rangeHeader !== undefined;
  const status = partial ? 206 : 200;
  m.requests.inc({ result: partial ? 'partial' : 'full' });
  res.writeHead(status, {
    ...common,
    'content-type': 'application/octet-stream',
    'content-length': range.end - range.start + 1,
    ...(partial ? { 'content-range': `bytes ${range.start}-${range.end}/${file.size}` } : {}),
  });
  if (req.method === 'HEAD') {
    res.end();
    return Promise.resolve(status);
  }
  m.active.inc();
  return new Promise<number>((settle) => {
    let done = false;
    const resolve = (code: number) => {
      if (done) return;
      done = true;
      m.active.dec();
      settle(code);
    };
    const stream = createReadStream(file.path, { start: range.start, end: range.end });
    stream.on('data', (chunk) => {
      if (res.destroyed) return;
      m.bytes.inc(chunk.length);
      if (!res.write(chunk)) {
        stream.pause();
        res.once('drain', () => stream.resume());
      }
    });
    stream.once('end', () => res.end(() => resolve(status)));
    stream.once('error', () => {
      res.destroy();
      resolve(status);
    });
    res.once('close', () => {
      stream.destroy();
      resolve(status);
    });
  });
}
