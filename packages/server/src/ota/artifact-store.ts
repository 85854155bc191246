import { createWriteStream, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { FirmwareDigest } from '@bulwark/protocol';
import type { ArtifactStorage, ImageRef, PendingImage } from './ota.js';

/**
 * Firmware images as files under `<dataDir>/firmware/`, named by artifact id (ids are
 * generated, never taken from a caller). An image is written to a temporary file while it is
 * hashed, and only a complete, matching image is moved into place.
 */
export class ArtifactStore implements ArtifactStorage {
  readonly #dir: string;

  constructor(dataDir: string) {
    this.#dir = join(dataDir, 'firmware');
    mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
  }

  /** The directory the images are in. */
  get dir(): string {
    return this.#dir;
  }

  path(id: string): string {
    if (!/^[A-Za-z0-9_]+$/.test(id)) throw new TypeError(`not an artifact id: ${id}`);
    return join(this.#dir, `${id}.bin`);
  }

  /**
   * Reads `body` into a temporary file, hashing it, and stops as soon as it passes `limit`
   * bytes (the declared size): the rest is never read into memory or onto disk. `file` is the
   * temporary file until commit moves it into place.
   */
  async receive(id: string, body: Readable, limit: number): Promise<PendingImage & { readonly file: string }> {
    const tmp = `${this.path(id)}.part`;
    const digest = new FirmwareDigest(limit);
    const out = createWriteStream(tmp, { mode: 0o600 });
    try {
      await new Promise<void>((resolve, reject) => {
        const stop = () => {
          body.off('data', onData);
          body.pause();
          resolve();
        };
        const onData = (chunk: Buffer) => {
          const before = digest.size;
          const more = digest.update(chunk);
          const kept = chunk.subarray(0, digest.size - before);
          if (kept.length > 0 && !out.write(kept)) {
            body.pause();
            out.once('drain', () => body.resume());
          }
          // Past the declared size: stop reading; the transport closes the connection after answering.
          if (!more) stop();
        };
        body.on('data', onData);
        body.once('end', resolve);
        // A sender that goes away mid-image leaves a short file: refused as a size mismatch.
        body.once('close', resolve);
        body.once('error', reject);
      });
    } catch (err) {
      rmSync(tmp, { force: true });
      throw err;
    } finally {
      await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    }
    const result = digest.digest();
    return {
      ...result,
      file: tmp,
      commit: async () => renameSync(tmp, this.path(id)),
      discard: () => rmSync(tmp, { force: true }),
    };
  }

  /** Embedded mode: the file is the image (it was checked when it was received). */
  async localFile(image: ImageRef): Promise<string> {
    return this.path(image.id);
  }

  size(id: string): number | undefined {
    try {
      return statSync(this.path(id)).size;
    } catch {
      return undefined;
    }
  }

  async remove(id: string): Promise<void> {
    rmSync(this.path(id), { force: true });
  }
}
