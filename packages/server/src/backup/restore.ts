import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { type Clock, PlatformError, systemClock } from '@bulwark/core';
import { SqliteSource, checkMasterKey, verifySqliteAudit } from '../store/index.js';
import { writeSecretFile } from '../secret-file.js';
import { type BackupManifest, MANIFEST_FILE, copyHashed, emptyDirectory, hashFile } from './files.js';

export interface RestoreOptions {
  /** The backup directory (`bulwark backup --out`). */
  readonly from: string;
  /** A new (or empty) data directory. */
  readonly dataDir: string;
  /**
   * The master key, when the backup does not hold it: its text, where it came from, and
   * whether to write it to `<data>/master.key` (a key from a file: yes; one the node will be
   * given in BULWARK_MASTER_KEY: no).
   */
  readonly masterKey?: { readonly text: string; readonly origin: string; readonly write: boolean };
  readonly clock?: Clock;
}

export interface RestoreReport {
  readonly dataDir: string;
  readonly files: number;
  readonly images: number;
  readonly masterKeyId: string;
  /** Where the node finds its master key after the restore. */
  readonly masterKey: 'master.key' | 'BULWARK_MASTER_KEY';
  readonly auditEntries: number;
  /** Where the node read its firmware root key set from, when that was not the data directory. */
  readonly rootKeysFrom: string | null;
}

/**
 * Restores a backup into a new data directory: every file is checked against the manifest
 * first, then copied (mode 0600); the master key must open the restored store's secrets and
 * its audit chain must verify, or the data directory is emptied again. The node then starts
 * on it as usual (`bulwark start --data DIR`).
 */
export async function restoreEmbedded(options: RestoreOptions): Promise<RestoreReport> {
  const clock = options.clock ?? systemClock;
  const from = resolve(options.from);
  const manifest = readManifest(from);
  for (const f of manifest.files) {
    const got = await hashFile(join(from, f.path)).catch(() => undefined);
    if (!got || got.size !== f.size || got.sha256 !== f.sha256) {
      throw new PlatformError('BULWARK_ERR_CONFLICT', `${join(from, f.path)} ${got ? "does not match the backup's manifest" : 'is missing'}: the backup is damaged, use another one`);
    }
  }
  const keyFile = manifest.files.find((f) => f.part === 'master-key');
  const key = options.masterKey ?? (keyFile ? { text: readFileSync(join(from, keyFile.path), 'utf8'), origin: "the backup's master.key", write: true } : undefined);
  if (!key) {
    throw new PlatformError('BULWARK_ERR_MASTER_KEY_INVALID', `the backup holds no master key (it was kept apart; the store needs ${manifest.masterKeyIds.join(', ')}): give it with --master-key-file, or in BULWARK_MASTER_KEY`);
  }
  const dataDir = resolve(options.dataDir);
  emptyDirectory(dataDir, 'the data directory');
  try {
    for (const f of manifest.files) {
      if (f.part === 'master-key') continue;
      const to = join(dataDir, f.path);
      mkdirSync(dirname(to), { recursive: true, mode: 0o700 });
      await copyHashed(join(from, f.path), to, 0o600);
    }
    const store = join(dataDir, 'bulwark.db');
    const source = SqliteSource.open(store);
    let masterKeyId: string;
    try {
      masterKeyId = (await checkMasterKey(source, key.text, key.origin)).masterKeyId;
    } finally {
      source.close();
    }
    const audit = await verifySqliteAudit(store, clock);
    if (!audit.ok) throw new PlatformError('BULWARK_ERR_CONFLICT', `the restored store's audit chain does not verify: ${audit.message}`);
    if (key.write) writeSecretFile(join(dataDir, 'master.key'), `${key.text.trim()}\n`);
    const rootKeysFrom = manifest.rootKeysFrom !== null && manifest.rootKeysFrom !== join(dataDir, 'firmware-root.json') ? manifest.rootKeysFrom : null;
    return {
      dataDir,
      files: manifest.files.length,
      images: manifest.files.filter((f) => f.part === 'firmware').length,
      masterKeyId,
      masterKey: key.write ? 'master.key' : 'BULWARK_MASTER_KEY',
      auditEntries: audit.entriesChecked,
      rootKeysFrom,
    };
  } catch (err) {
    // Nothing half-restored is left where a node could start on it.
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
}

function readManifest(dir: string): BackupManifest {
  const path = join(dir, MANIFEST_FILE);
  if (!existsSync(path)) throw new PlatformError('BULWARK_ERR_NOT_FOUND', `${dir} is not a complete Bulwark backup (no ${MANIFEST_FILE})`);
  let manifest: BackupManifest;
  try {
    manifest = JSON.parse(readFileSync(path, 'utf8')) as BackupManifest;
  } catch (cause) {
    throw new PlatformError('BULWARK_ERR_CONFLICT', `${path} is not valid JSON: the backup is damaged`, { cause });
  }
  if (manifest.format !== 1 || !Array.isArray(manifest.files) || !manifest.files.some((f) => f.part === 'store')) {
    throw new PlatformError('BULWARK_ERR_CONFLICT', `${path} is not a manifest this version of Bulwark reads`);
  }
  for (const f of manifest.files) {
    // Paths come from a file: never outside the backup or the data directory.
    if (typeof f.path !== 'string' || f.path.startsWith('/') || f.path.split(/[\\/]/).includes('..')) throw new PlatformError('BULWARK_ERR_CONFLICT', `${path} names a file outside the backup: ${String(f.path)}`);
  }
  return manifest;
}
