import { Readable } from 'node:stream';
import type { FirmwareFetcher } from './download.js';

/**
 * Test-only: a firmware server in memory with the device listener's Range semantics
 * (200 whole, 206 from an offset, 416 past the end, ETag = the image's SHA-256). It
 * counts every byte it serves and can cut a response short or append bytes to it.
 */
export class MemoryFirmwareServer implements FirmwareFetcher {
  readonly images = new Map<string, { body: Buffer; etag: string }>();
  readonly requests: { path: string; from: number }[] = [];
  bytesServed = 0;
  /** Cut the next response after this many bytes of the image (a dropped connection). */
  cutNextAt: number | undefined;
  /** Bytes appended past the image on every response (endless data). */
  trailing = 0;
  /** While set, requests wait for it (a slow network). */
  hold: Promise<void> | undefined;

  put(artifactId: string, body: Buffer, sha256: string): void {
    this.images.set(`/v1/firmware/${artifactId}`, { body, etag: `"${sha256}"` });
  }

  async get(path: string, from: number, _signal?: AbortSignal) {
    this.requests.push({ path, from });
    await this.hold;
    const img = this.images.get(path);
    if (!img) return { status: 404, body: Readable.from([]) };
    if (from >= img.body.length) return { status: 416, etag: img.etag, body: Readable.from([]) };
    let part = Buffer.concat([img.body.subarray(from), Buffer.alloc(this.trailing, 0x41)]);
    const cut = this.cutNextAt;
    this.cutNextAt = undefined;
    const cutHere = cut !== undefined && cut > from;
    if (cutHere) part = part.subarray(0, cut - from);
    this.bytesServed += part.length;
    const chunks = Array.from({ length: Math.ceil(part.length / 16_384) }, (_, i) => part.subarray(i * 16_384, (i + 1) * 16_384));
    let next = 0;
    const body = new Readable({
      read() {
        if (next < chunks.length) this.push(chunks[next++]);
        else if (cutHere) this.destroy(new Error('connection reset'));
        else this.push(null);
      },
    });
    return { status: from > 0 ? 206 : 200, etag: img.etag, ...(from > 0 ? { contentRange: `bytes ${from}-${img.body.length - 1}/${img.body.length}` } : {}), body };
  }
}
