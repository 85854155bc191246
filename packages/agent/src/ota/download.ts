import { type FileHandle, open, stat, truncate } from 'node:fs/promises';
import { request } from 'node:https';
import type { Readable } from 'node:stream';

/** How the agent reaches the image: GET a path from a byte offset on. */
export interface FirmwareFetcher {
  get(path: string, from: number, signal?: AbortSignal): Promise<{ readonly status: number; readonly etag?: string; readonly contentRange?: string; readonly body: Readable }>;
}

/** The device HTTPS listener with mutual TLS: the device certificate is what entitles it to the image. */
export class HttpsFetcher implements FirmwareFetcher {
  constructor(
    private readonly baseUrl: string,
    private readonly tls: () => { key: string; cert: string; ca: string },
    private readonly timeoutMs: number,
  ) {}

  get(path: string, from: number, signal?: AbortSignal): Promise<{ status: number; etag?: string; contentRange?: string; body: Readable }> {
    const url = new URL(path, this.baseUrl);
    return new Promise((resolve, reject) => {
      const req = request(url, { method: 'GET', agent: false, timeout: this.timeoutMs, headers: from > 0 ? { range: `bytes=${from}-` } : {}, ...(signal ? { signal } : {}), ...this.tls() }, (res) => {
        res.setTimeout(this.timeoutMs, () => res.destroy(new Error(`no data for ${this.timeoutMs} ms`)));
        const { etag, 'content-range': contentRange } = res.headers;
        resolve({ status: res.statusCode ?? 0, ...(etag ? { etag } : {}), ...(contentRange ? { contentRange } : {}), body: res });
      });
      req.once('timeout', () => req.destroy(new Error(`no answer in ${this.timeoutMs} ms`)));
      req.once('error', reject);
      req.end();
    });
  }
}

export class DownloadError extends Error {
  constructor(
    message: string,
    readonly permanent: boolean,
  ) {
    super(message);
    this.name = 'DownloadError';
  }
}

export interface DownloadOptions {
  readonly path: string;
  readonly file: string;
  readonly size: number;
  /** The image's SHA-256: a resumed range must come from the same image (its ETag). */
  readonly sha256: string;
  readonly fetcher: FirmwareFetcher;
  /** Consecutive attempts without progress before giving up. */
  readonly retries: number;
  readonly retryDelayMs: (attempt: number) => number;
  readonly onProgress?: (bytes: number) => void;
  /** Stops the download (the agent closes); what is on disk stays for the next start. */
  readonly signal?: AbortSignal;
}

/**
 * Fetches an image into `file`, resuming from what the file already holds (a cut
 * connection, a restart, a power cut) with an HTTP Range request. Never keeps a byte past
 * the declared size: a longer stream ends the download with `tooLong` (endless-data
 * attack). Resolves with the bytes held; the caller verifies the hash.
 */
export async function downloadImage(o: DownloadOptions): Promise<{ readonly bytes: number; readonly tooLong: boolean }> {
  let failures = 0;
  for (;;) {
    o.signal?.throwIfAborted();
    let have = await sizeOf(o.file);
    if (have > o.size) have = await restartFile(o.file);
    if (have === o.size) return { bytes: have, tooLong: false };
    const before = have;
    try {
      const res = await o.fetcher.get(o.path, have, o.signal);
      if (o.signal?.aborted) {
        res.body.destroy();
        o.signal.throwIfAborted();
      }
      if (res.status === 416) {
        res.body.resume();
        await restartFile(o.file);
        throw new DownloadError(`the server could not serve bytes ${have}- (416)`, false);
      }
      if (res.status === 404 || res.status === 403 || res.status === 401) {
        res.body.resume();
        throw new DownloadError(`the server refused the image (${res.status}): the job is no longer live`, true);
      }
      if (res.status !== 200 && res.status !== 206) {
        res.body.resume();
        throw new DownloadError(`unexpected status ${res.status}`, false);
      }
      // A 206 must continue this image exactly where the file ends; anything else starts over.
      const sameImage = res.etag === undefined || res.etag === `"${o.sha256}"`;
      const continues = res.contentRange === undefined || res.contentRange.startsWith(`bytes ${have}-`);
      if (res.status === 200 || !sameImage || !continues) {
        if (res.status === 206) {
          res.body.destroy();
          await restartFile(o.file);
          throw new DownloadError(`the server answered another range (${res.contentRange ?? '?'}) or image (${res.etag ?? '?'})`, false);
        }
        have = await restartFile(o.file);
      }
      const out = await receive(o, res.body, have);
      if (out.tooLong) return out;
      have = out.bytes;
      if (have < o.size) throw new DownloadError(`the connection ended after ${have} of ${o.size} bytes`, false);
      return out;
    } catch (err) {
      if ((err instanceof DownloadError && err.permanent) || o.signal?.aborted) throw err;
      const now = await sizeOf(o.file);
      failures = now > before ? 1 : failures + 1;
      if (failures > o.retries) throw new DownloadError(`gave up after ${failures} attempts without progress: ${(err as Error).message}`, true);
      await sleep(o.retryDelayMs(failures), o.signal);
    }
  }
}

const SYNC_EVERY_BYTES = 256 * 1024;

/** Appends the body to the file from `offset`, stopping at the declared size; data reaches the disk before progress is reported. */
async function receive(o: DownloadOptions, body: Readable, offset: number): Promise<{ bytes: number; tooLong: boolean }> {
  o.signal?.throwIfAborted();
  const fh: FileHandle = await open(o.file, offset === 0 ? 'w' : 'r+', 0o600);
  let at = offset;
  let synced = offset;
  let tooLong = false;
  const abort = () => body.destroy(new Error('the download was stopped'));
  o.signal?.addEventListener('abort', abort, { once: true });
  if (o.signal?.aborted) abort();
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      const room = o.size - at;
      const keep = chunk.length > room ? chunk.subarray(0, room) : chunk;
      if (keep.length > 0) {
        await fh.write(keep, 0, keep.length, at);
        at += keep.length;
      }
      if (chunk.length > room) {
        tooLong = true;
        body.destroy();
        break;
      }
      if (at - synced >= SYNC_EVERY_BYTES || at === o.size) {
        await fh.datasync();
        synced = at;
        o.onProgress?.(at);
      }
    }
  } catch (err) {
    await fh.datasync().catch(() => undefined);
    throw err;
  } finally {
    o.signal?.removeEventListener('abort', abort);
    await fh.close();
  }
  return { bytes: at, tooLong };
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', stop);
      resolve();
    }, ms);
    const stop = () => {
      clearTimeout(t);
      reject(new Error('the download was stopped'));
    };
    signal?.addEventListener('abort', stop, { once: true });
    if (signal?.aborted) stop();
  });
}

async function sizeOf(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch {
    return 0;
  }
}

async function restartFile(file: string): Promise<number> {
  await truncate(file, 0).catch(() => undefined);
  return 0;
}
