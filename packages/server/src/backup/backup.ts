import { closeSync, existsSync, mkdirSync, openSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { type Clock, PlatformError, systemClock } from '@bulwark/core';
import { SqliteSource, imagePath, verifySqliteAudit } from '../store/index.js';
import { type BackupFile, type BackupManifest, MANIFEST_FILE, copyHashed, emptyDirectory, hashFile } from './files.js';
import { writeSecretFile } from '../secret-file.js';

/** The node id file the cluster context keeps in the data directory (cluster/node-id.ts). */
const NODE_ID_FILE = 'node-id';

export interface BackupOptions {
  /** The embedded node's data directory. */
  readonly dataDir: string;
  /** The SQLite file, when it is not `<data>/bulwark.db`. */
  readonly storeFile?: string;
  /** The firmware root key set file (`ota.rootKeysFile`), when it is not `<data>/firmware-root.json`. */
  readonly rootKeysFile?: string;
  /** A new (or empty) directory for the backup. */
  readonly out: string;
  /** Put `<data>/master.key` in the backup too (default: keep the key apart; see the guide). */
  readonly withMasterKey?: boolean;
  readonly clock?: Clock;
}

export interface BackupReport {
  readonly out: string;
  readonly manifest: BackupManifest;
  /** Where the master key is, when it is not in the backup. */
  readonly masterKeyApart: string | null;
}

/**
 * A complete backup of an embedded node, safe while it runs: the store as one consistent
 * snapshot (`VACUUM INTO`: one read transaction, writers go on), the image of every
 * published firmware artifact of that snapshot (checked against its SHA-256), the firmware
 * root key set, the node id and, when asked, the master key; then a manifest with every
 * file's size and SHA-256, written last. The snapshot's audit chain is verified before the
 * manifest is written. Caches are not saved (an embedded node has none on disk).
 */
export async function backupEmbedded(options: BackupOptions): Promise<BackupReport> {
  const clock = options.clock ?? systemClock;
  const dataDir = resolve(options.dataDir);
  const storeFile = resolve(options.storeFile ?? join(dataDir, 'bulwark.db'));
  if (!existsSync(storeFile)) throw new PlatformError('BULWARK_ERR_NOT_FOUND', `no Bulwark store at ${storeFile}: name the data directory the node runs with`);
  const out = resolve(options.out);
  emptyDirectory(out, 'the backup directory');
  try {
    const files: BackupFile[] = [];
    const snapshot = join(out, 'bulwark.db');
    snapshotStore(storeFile, snapshot);

    const source = SqliteSource.open(snapshot);
    let facts: { migrations: number[]; masterKeyIds: string[]; images: { id: string; size: number; sha256: string }[] };
    try {
      facts = { migrations: source.migrationIds(), masterKeyIds: [...new Set(source.dataKeys().map((k) => k.masterKeyId))], images: source.publishedImages() };
    } finally {
      source.close();
    }
    const audit = await verifySqliteAudit(snapshot, clock);
    if (!audit.ok) throw new PlatformError('BULWARK_ERR_CONFLICT', `the store's audit chain does not verify (${audit.message}); the backup is not made: find out why first (bulwark audit-log verify)`);
    files.push({ path: 'bulwark.db', part: 'store', ...(await hashFile(snapshot)) });

    if (facts.images.length > 0) mkdirSync(join(out, 'firmware'), { mode: 0o700 });
    for (const image of facts.images) {
      const rel = join('firmware', `${image.id}.bin`);
      const from = imagePath(dataDir, image.id);
      if (!existsSync(from)) throw new PlatformError('BULWARK_ERR_FIRMWARE_UNAVAILABLE', `firmware ${image.id} is published but its image ${from} is missing`);
      const copied = await copyHashed(from, join(out, rel), 0o600);
      if (copied.size !== image.size || copied.sha256 !== image.sha256) {
        throw new PlatformError('BULWARK_ERR_FIRMWARE_UNAVAILABLE', `the image file ${from} does not match firmware ${image.id} (SHA-256 ${copied.sha256}, expected ${image.sha256})`);
      }
      files.push({ path: rel, part: 'firmware', ...copied });
    }

    const rootKeys = resolve(options.rootKeysFile ?? join(dataDir, 'firmware-root.json'));
    if (existsSync(rootKeys)) files.push({ path: 'firmware-root.json', part: 'root-keys', ...(await copyHashed(rootKeys, join(out, 'firmware-root.json'), 0o600)) });
    const nodeId = join(dataDir, NODE_ID_FILE);
    if (existsSync(nodeId)) files.push({ path: NODE_ID_FILE, part: 'node-id', ...(await copyHashed(nodeId, join(out, NODE_ID_FILE), 0o600)) });
    const masterKey = join(dataDir, 'master.key');
    if (options.withMasterKey) {
      if (!existsSync(masterKey)) throw new PlatformError('BULWARK_ERR_NOT_FOUND', `${masterKey} does not exist (is the key given in BULWARK_MASTER_KEY?): keep that value with the backup instead`);
      files.push({ path: 'master.key', part: 'master-key', ...(await copyHashed(masterKey, join(out, 'master.key'), 0o600)) });
    }

    const manifest: BackupManifest = {
      format: 1,
      createdAt: clock.now(),
      migrations: facts.migrations,
      masterKeyIds: facts.masterKeyIds,
      auditEntries: audit.entriesChecked,
      rootKeysFrom: existsSync(rootKeys) ? rootKeys : null,
      files,
    };
    writeSecretFile(join(out, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
    return { out, manifest, masterKeyApart: options.withMasterKey ? null : existsSync(masterKey) ? masterKey : 'BULWARK_MASTER_KEY' };
  } catch (err) {
    // A failed backup leaves nothing that could be mistaken for one.
    rmSync(out, { recursive: true, force: true });
    throw err;
  }
}

/** One consistent copy of the live store, taken in one read transaction (a running node keeps writing). */
function snapshotStore(storeFile: string, snapshot: string): void {
  let db: Database.Database;
  try {
    db = new Database(storeFile, { fileMustExist: true, timeout: 10_000 });
  } catch (cause) {
    throw new PlatformError('BULWARK_ERR_STORE_UNAVAILABLE', `cannot open ${storeFile}: ${(cause as Error).message}`, { cause });
  }
  try {
    // Born owner-only: SQLite writes into an empty file that exists and keeps its mode.
    closeSync(openSync(snapshot, 'wx', 0o600));
    db.prepare('VACUUM INTO ?').run(snapshot);
  } catch (cause) {
    throw new PlatformError('BULWARK_ERR_STORE_UNAVAILABLE', `cannot snapshot ${storeFile}: ${(cause as Error).message}`, { cause });
  } finally {
    db.close();
  }
}
