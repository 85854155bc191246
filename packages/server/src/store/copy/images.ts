import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PlatformError } from '@bulwark/core';
import { readChunks } from '../../ota/index.js';
import type { SqlClient } from '../sql-client.js';
import { SqlFirmwareImageRepository } from '../sql/firmware-images.js';

export interface ImageRef {
  readonly id: string;
  readonly size: number;
  readonly sha256: string;
}

/** The path of an artifact's image in an embedded data directory (`<data>/firmware/<id>.bin`). */
export function imagePath(dataDir: string, id: string): string {
  if (!/^[A-Za-z0-9_]+$/.test(id)) throw new PlatformError('BULWARK_ERR_INTERNAL', `not an artifact id: ${id}`);
  return join(dataDir, 'firmware', `${id}.bin`);
}

/**
 * Stores one image file in PostgreSQL as the cluster keeps it (chunks of IMAGE_CHUNK_BYTES,
 * through the same repository a node uses), refusing a file whose size or SHA-256 is not its
 * artifact's. `onBytes` is told of each chunk, for progress.
 */
export async function copyImage(db: SqlClient, dataDir: string, image: ImageRef, onBytes: (n: number) => void): Promise<number> {
  const path = imagePath(dataDir, image.id);
  if (!existsSync(path)) {
    throw new PlatformError('BULWARK_ERR_FIRMWARE_UNAVAILABLE', `firmware ${image.id} is published but its image ${path} is missing: restore it from a backup, or remove the artifact, then run this again`);
  }
  const hash = createHash('sha256');
  let size = 0;
  async function* hashed(): AsyncIterable<Buffer> {
    for await (const chunk of readChunks(path)) {
      hash.update(chunk);
      size += chunk.length;
      onBytes(chunk.length);
      yield chunk;
    }
  }
  const chunks = await new SqlFirmwareImageRepository(db).put(image.id, hashed());
  const sha256 = hash.digest('hex');
  if (size !== image.size || sha256 !== image.sha256) {
    throw new PlatformError('BULWARK_ERR_FIRMWARE_UNAVAILABLE', `the image file ${path} does not match firmware ${image.id} (${size} bytes, SHA-256 ${sha256}; the artifact says ${image.size} bytes, SHA-256 ${image.sha256})`);
  }
  return chunks;
}

/** Reads an image back from PostgreSQL, chunk by chunk, and says whether it is the artifact's. */
export async function storedImageMatches(db: SqlClient, image: ImageRef): Promise<boolean> {
  const hash = createHash('sha256');
  let size = 0;
  let chunks = 0;
  for await (const chunk of new SqlFirmwareImageRepository(db).chunks(image.id)) {
    chunks += 1;
    size += chunk.length;
    hash.update(chunk);
  }
  return chunks > 0 && size === image.size && hash.digest('hex') === image.sha256;
}
