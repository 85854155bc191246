import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { PlatformError } from '@bulwark/core';

/** The manifest a complete backup ends with: written last, so a backup without it is incomplete. */
export const MANIFEST_FILE = 'bulwark-backup.json';

export type BackupPart = 'store' | 'firmware' | 'root-keys' | 'node-id' | 'master-key';

export interface BackupFile {
  /** Relative to the backup directory. */
  readonly path: string;
  readonly part: BackupPart;
  readonly size: number;
  readonly sha256: string;
}

export interface BackupManifest {
  readonly format: 1;
  readonly createdAt: number;
  /** Migrations applied to the store: the version of Bulwark that can run it. */
  readonly migrations: readonly number[];
  /** Ids (fingerprints, not keys) of the master keys that wrap the store's data keys. */
  readonly masterKeyIds: readonly string[];
  readonly auditEntries: number;
  /** Where the node read the firmware root key set from (restored to <data>/firmware-root.json). */
  readonly rootKeysFrom: string | null;
  readonly files: readonly BackupFile[];
}

const CHUNK = 1 << 20;

/**
 * Copies a file, hashing it on the way, into a new file (never over an existing one) with
 * `mode`, flushed to disk before it resolves.
 */
export async function copyHashed(from: string, to: string, mode: number): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  let size = 0;
  const src = await open(from, 'r');
  try {
    const dst = await open(to, 'wx', mode);
    try {
      const buf = Buffer.alloc(CHUNK);
      for (;;) {
        const { bytesRead } = await src.read(buf, 0, CHUNK, null);
        if (bytesRead === 0) break;
        const part = buf.subarray(0, bytesRead);
        hash.update(part);
        size += bytesRead;
        await dst.write(part);
      }
      await dst.sync();
    } finally {
      await dst.close();
    }
  } finally {
    await src.close();
  }
  return { size, sha256: hash.digest('hex') };
}

export async function hashFile(path: string): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  let size = 0;
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(CHUNK);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, CHUNK, null);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
      size += bytesRead;
    }
  } finally {
    await fh.close();
  }
  return { size, sha256: hash.digest('hex') };
}

/** Creates `dir` (mode 0700) or takes it when it exists and is empty; refuses one that holds anything. */
export function emptyDirectory(dir: string, what: string): void {
  if (existsSync(dir) && readdirSync(dir).length > 0) {
    throw new PlatformError('BULWARK_ERR_CONFLICT', `${what} ${dir} is not empty: name a new directory (nothing is ever written over)`);
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}
