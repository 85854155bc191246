import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { type Logger, PlatformError } from '@bulwark/core';
import { ArtifactStore } from './artifact-store.js';
import type { ArtifactStorage, FirmwareArtifact, FirmwareImageRepository, ImageRef, PendingImage } from './ota.js';

/** Size of one stored chunk (the last one of an image may be shorter). */
export const IMAGE_CHUNK_BYTES = 256 * 1024;

/** What fetching an image from the shared store into a node's cache came to. */
export type ImageFetchResult = 'fetched' | 'corrupt' | 'missing';

export interface SharedArtifactDeps {
  readonly log: Logger;
  /** Told of every fetch from the shared store (for a metric). */
  readonly onFetch?: (result: ImageFetchResult) => void;
}

/**
 * Cluster mode: firmware images live in the shared store (`FirmwareImageRepository`), and
 * each node keeps a copy of the images it serves under `<dataDir>/firmware/`. An upload is
 * stored whole, in one transaction, after its size and SHA-256 were checked; a node that
 * lacks an image fetches it once (concurrent requests wait for the same fetch), checks its
 * size and SHA-256 against the artifact before anyone can use it, then serves Range from the
 * file. A copy that does not match is never served.
 */
export class SharedArtifactStore implements ArtifactStorage {
  readonly #files: ArtifactStore;
  /** Local copies checked (or being fetched) by this process, by artifact id. */
  readonly #ready = new Map<string, Promise<string>>();

  constructor(
    private readonly images: FirmwareImageRepository,
    private readonly artifacts: { get(id: string): Promise<FirmwareArtifact | undefined> },
    dataDir: string,
    private readonly deps: SharedArtifactDeps,
  ) {
    this.#files = new ArtifactStore(dataDir);
  }

  async receive(id: string, body: Readable, limit: number): Promise<PendingImage> {
    const image = await this.#files.receive(id, body, limit);
    return {
      size: image.size,
      sha256: image.sha256,
      tooLong: image.tooLong,
      commit: async () => {
        // The shared copy first: once the artifact reads as published, every node must find its image.
        try {
          await this.images.put(id, readChunks(image.file));
        } catch (err) {
          image.discard();
          throw err;
        }
        await image.commit();
        this.#ready.set(id, Promise.resolve(this.#files.path(id)));
      },
      discard: () => image.discard(),
    };
  }

  async localFile(image: ImageRef): Promise<string> {
    const known = this.#ready.get(image.id);
    if (known) {
      const path = await known;
      if (existsSync(path)) return path;
      // The copy went away (an operator cleared the cache): fetch it again, once.
      if (this.#ready.get(image.id) !== known) return this.localFile(image);
      this.#ready.delete(image.id);
    }
    const made = this.#make(image);
    this.#ready.set(image.id, made);
    // A failed fetch is not remembered: the next request tries again.
    made.catch(() => {
      if (this.#ready.get(image.id) === made) this.#ready.delete(image.id);
    });
    return made;
  }

  async remove(id: string): Promise<void> {
    await this.images.delete(id);
    this.#ready.delete(id);
    await this.#files.remove(id);
  }

  /**
   * Once at start, before serving: removes temporary files a stopped node left, drops copies
   * of images the shared store no longer holds (their artifact was removed), and copies into
   * the shared store the published images this node held before it stored them there.
   */
  async sweep(): Promise<{ imported: number; dropped: number }> {
    const names = readdirSync(this.#files.dir);
    for (const name of names.filter((n) => n.endsWith('.part') || n.endsWith('.fetch'))) rmSync(join(this.#files.dir, name), { force: true });
    const ids = names.filter((n) => /^[A-Za-z0-9_]+\.bin$/.test(n)).map((n) => n.slice(0, -'.bin'.length));
    const stored = await this.images.stored(ids);
    let imported = 0;
    let dropped = 0;
    for (const id of ids.filter((i) => !stored.has(i))) {
      const a = await this.artifacts.get(id);
      const path = this.#files.path(id);
      if (a?.state === 'published' && (await fileMatches(path, a))) {
        await this.images.put(id, readChunks(path));
        imported += 1;
      } else {
        rmSync(path, { force: true });
        dropped += 1;
      }
    }
    if (imported + dropped > 0) this.deps.log.info({ imported, dropped }, 'firmware cache swept');
    return { imported, dropped };
  }

  async #make(image: ImageRef): Promise<string> {
    const path = this.#files.path(image.id);
    // A copy from an earlier run is used once it hashes right (once per process).
    if (existsSync(path)) {
      if (await fileMatches(path, image)) return path;
      this.deps.log.warn({ id: image.id }, 'the local copy of a firmware image does not match its SHA-256; fetching it again');
      rmSync(path, { force: true });
    }
    return this.#fetch(image, path);
  }

  async #fetch(image: ImageRef, path: string): Promise<string> {
    const tmp = `${path}.fetch`;
    const hash = createHash('sha256');
    let size = 0;
    let chunks = 0;
    const out = await open(tmp, 'w', 0o600);
    try {
      for await (const chunk of this.images.chunks(image.id)) {
        chunks += 1;
        size += chunk.length;
        if (size > image.size) break;
        hash.update(chunk);
        await out.write(chunk);
      }
    } catch (err) {
      await out.close();
      rmSync(tmp, { force: true });
      throw err;
    }
    await out.close();
    const sha256 = hash.digest('hex');
    if (chunks === 0 || size !== image.size || sha256 !== image.sha256) {
      rmSync(tmp, { force: true });
      const result = chunks === 0 ? 'missing' : 'corrupt';
      this.deps.onFetch?.(result);
      const detail = chunks === 0 ? 'the shared store holds no image for it' : `its image in the shared store does not match (${size} bytes${size > image.size ? ' or more' : `, SHA-256 ${sha256}`}; expected ${image.size} bytes, SHA-256 ${image.sha256})`;
      this.deps.log.error({ id: image.id, result }, `firmware ${image.id} cannot be served: ${detail}`);
      throw new PlatformError('BULWARK_ERR_FIRMWARE_UNAVAILABLE', `firmware ${image.id} cannot be served by this node right now`);
    }
    renameSync(tmp, path);
    this.deps.onFetch?.('fetched');
    return path;
  }
}

/** A file's chunks of IMAGE_CHUNK_BYTES, in order; an empty file is one empty chunk. */
export async function* readChunks(path: string): AsyncIterable<Buffer> {
  const fh = await open(path, 'r');
  try {
    for (let first = true; ; first = false) {
      const buf = Buffer.alloc(IMAGE_CHUNK_BYTES);
      let got = 0;
      while (got < buf.length) {
        const { bytesRead } = await fh.read(buf, got, buf.length - got, null);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      if (got === 0 && !first) return;
      yield buf.subarray(0, got);
      if (got < buf.length) return;
    }
  } finally {
    await fh.close();
  }
}

/** Whether a file has exactly the image's size and SHA-256. */
async function fileMatches(path: string, image: ImageRef): Promise<boolean> {
  const hash = createHash('sha256');
  let size = 0;
  try {
    for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > image.size) return false;
      hash.update(chunk);
    }
  } catch {
    return false;
  }
  return size === image.size && hash.digest('hex') === image.sha256;
}
