import { statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { type Clock, PlatformError, systemClock } from '@bulwark/core';
import { AuditService } from '../../audit/index.js';
import { migrate } from '../migrate.js';
import { MIGRATIONS } from '../migrations.js';
import { PostgresClient } from '../postgres/postgres-client.js';
import type { SqlExecutor } from '../sql-client.js';
import { SqlAuditRepository } from '../sql/audit.js';
import { redactUrl } from '../store.js';
import { type ImageRef, copyImage, imagePath, storedImageMatches } from './images.js';
import { checkMasterKey } from './master-key-check.js';
import { SEEDED_TABLES, checkShape, inTransaction, insertRows, nonEmptyTables, rowsPerInsert, targetColumns } from './pg-target.js';
import { type SourceTable, SqliteSource, quoteIdent } from './sqlite-source.js';

export interface StoreCopyOptions {
  /** The embedded node's data directory, or `sqlite:<path>` to its database file. */
  readonly from: string;
  /** An empty PostgreSQL database: `postgres://user@host:5432/db` (a schema through `?options=-c%20search_path%3D<schema>`). */
  readonly to: string;
  /** Where the embedded node keeps its firmware images (`<dir>/firmware/`); default: the source's directory. */
  readonly dataDir?: string;
  /** The master key the cluster's nodes will be given, as text, and where it came from (for messages). */
  readonly masterKey: { readonly text: string; readonly origin: string };
  /** Rows per INSERT (fewer for wide tables: one statement holds at most 60,000 values). Default 1000. */
  readonly batchRows?: number;
  readonly onProgress?: (p: CopyProgress) => void;
  readonly clock?: Clock;
  /** PostgreSQL schema to write into (tests isolate themselves this way). */
  readonly pgSchema?: string;
}

export type CopyProgress =
  | { readonly kind: 'plan'; readonly tables: readonly TableCount[]; readonly rows: number; readonly images: number; readonly imageBytes: number }
  | { readonly kind: 'rows'; readonly table: string; readonly copied: number; readonly of: number }
  | { readonly kind: 'image'; readonly id: string; readonly bytes: number; readonly of: number }
  | { readonly kind: 'verify'; readonly step: 'rows' | 'audit' | 'images' };

export interface TableCount {
  readonly name: string;
  readonly rows: number;
}

export interface StoreCopyReport {
  readonly source: string;
  readonly target: string;
  readonly masterKeyId: string;
  readonly secretsOpened: number;
  readonly tables: readonly TableCount[];
  readonly rows: number;
  readonly images: readonly (ImageRef & { readonly chunks: number })[];
  readonly audit: { readonly entriesChecked: number; readonly headSeq: number };
}

/**
 * Copies an embedded deployment's whole store (every table the migrations create, and the
 * firmware images from `<data>/firmware/` into `firmware_image_chunks`) into an empty
 * PostgreSQL store, in one transaction: the target holds all of it, verified, or nothing.
 * Before anything is written it refuses a source a node still runs on, a source of another
 * schema version, a master key that cannot open the source's secrets, and a target that
 * holds data. Before the commit it checks the row count of every table, the audit chain
 * (the platform's own verification) and every image's SHA-256, read back from PostgreSQL.
 */
export async function copyStore(options: StoreCopyOptions): Promise<StoreCopyReport> {
  const clock = options.clock ?? systemClock;
  const progress = options.onProgress ?? (() => undefined);
  const targetUrl = checkTargetUrl(options.to);
  const { file, dataDir } = resolveSource(options.from, options.dataDir);
  const source = SqliteSource.open(file);
  try {
    checkMigrations(source.migrationIds());
    source.foldPendingRollups();
    const key = await checkMasterKey(source, options.masterKey.text, options.masterKey.origin);
    const tables = source.tables();
    const counts: TableCount[] = tables.map((t) => ({ name: t.name, rows: source.count(t.name) }));
    const images = source.publishedImages();
    for (const image of images) imageSize(dataDir, image);
    const rows = counts.reduce((n, c) => n + c.rows, 0);
    progress({ kind: 'plan', tables: counts, rows, images: images.length, imageBytes: images.reduce((n, i) => n + i.size, 0) });

    const db = new PostgresClient({ url: targetUrl, maxConnections: 2, ...(options.pgSchema !== undefined ? { schema: options.pgSchema } : {}) });
    try {
      await prepareTarget(db, clock, tables);
      const copied = await db.transaction(async (tx) => {
        const full = await nonEmptyTables(tx, tables.map((t) => t.name).concat('firmware_image_chunks'));
        if (full.length > 0) {
          throw new PlatformError('BULWARK_ERR_CONFLICT', `the target is not empty (${full.join(', ')} hold data): copy only into a new database or schema; drop it and create it again to start over`);
        }
        for (const name of SEEDED_TABLES) await tx.run(`DELETE FROM ${quoteIdent(name)}`);
        for (const [i, t] of tables.entries()) await copyTable(source, tx, t, counts[i]!.rows, options.batchRows ?? 1000, progress);
        const client = inTransaction(tx);
        const stored: (ImageRef & { chunks: number })[] = [];
        for (const image of images) {
          let bytes = 0;
          const chunks = await copyImage(client, dataDir, image, (n) => {
            bytes += n;
            progress({ kind: 'image', id: image.id, bytes, of: image.size });
          });
          stored.push({ ...image, chunks });
        }
        return { stored, audit: await verify(tx, counts, images, clock, progress) };
      });
      return {
        source: file,
        target: redactUrl(targetUrl),
        masterKeyId: key.masterKeyId,
        secretsOpened: key.secretsOpened,
        tables: counts,
        rows,
        images: copied.stored,
        audit: copied.audit,
      };
    } finally {
      await db.close();
    }
  } finally {
    source.close();
  }
}

/** The target must be a PostgreSQL URL; anything else is a usage error, found before anything is opened. */
export function checkTargetUrl(url: string): string {
  const bad = (why: string) => new PlatformError('BULWARK_ERR_CONFIG_INVALID', `--to: "${redactUrl(url)}" ${why}; expected postgres://user[:password]@host[:port]/database`);
  if (!/^postgres(ql)?:\/\//.test(url)) throw bad('is not a PostgreSQL URL');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw bad('is not a valid URL');
  }
  if (parsed.hostname === '' || parsed.pathname.length <= 1) throw bad('names no host or no database');
  return url;
}

/** The database file and the data directory (firmware images) of the source. */
export function resolveSource(from: string, dataDir: string | undefined): { file: string; dataDir: string } {
  if (/^postgres(ql)?:\/\//.test(from)) throw new PlatformError('BULWARK_ERR_CONFIG_INVALID', '--from must be the embedded store: its data directory, or sqlite:<path to bulwark.db>');
  let file: string;
  if (from.startsWith('sqlite:')) file = resolve(from.slice('sqlite:'.length));
  else {
    const dir = resolve(from);
    let isDir = false;
    try {
      isDir = statSync(dir).isDirectory();
    } catch {
      throw new PlatformError('BULWARK_ERR_NOT_FOUND', `no Bulwark data directory at ${dir}`);
    }
    file = isDir ? join(dir, 'bulwark.db') : dir;
  }
  return { file, dataDir: resolve(dataDir ?? dirname(file)) };
}

function checkMigrations(applied: readonly number[]): void {
  const known = MIGRATIONS.map((m) => m.id);
  const unknown = applied.filter((id) => !known.includes(id));
  if (unknown.length > 0) {
    throw new PlatformError('BULWARK_ERR_CONFLICT', `the source was migrated by a newer Bulwark (migrations ${unknown.join(', ')}): run the copy with that version`);
  }
  const missing = known.filter((id) => !applied.includes(id));
  if (missing.length > 0) {
    throw new PlatformError('BULWARK_ERR_CONFLICT', `the source lacks migrations ${missing.join(', ')}: start it once with this version of Bulwark (it migrates on start), stop it, then copy`);
  }
}

function imageSize(dataDir: string, image: ImageRef): void {
  const path = imagePath(dataDir, image.id);
  let size: number;
  try {
    size = statSync(path).size;
  } catch {
    throw new PlatformError('BULWARK_ERR_FIRMWARE_UNAVAILABLE', `firmware ${image.id} is published but its image ${path} is missing: pass the node's data directory with --data, or restore the file from a backup`);
  }
  if (size !== image.size) throw new PlatformError('BULWARK_ERR_FIRMWARE_UNAVAILABLE', `the image file ${path} has ${size} bytes; firmware ${image.id} has ${image.size}`);
}

/** The target's schema, made by the normal migrations, with every table and column of the source. */
async function prepareTarget(db: PostgresClient, clock: Clock, tables: readonly SourceTable[]): Promise<void> {
  try {
    await migrate(db, clock);
  } catch (err) {
    if (err instanceof PlatformError) throw err;
    throw new PlatformError('BULWARK_ERR_STORE_UNAVAILABLE', `cannot prepare the target: ${(err as Error).message}`, { cause: err });
  }
  checkShape(tables, await targetColumns(db));
}

async function copyTable(source: SqliteSource, tx: SqlExecutor, table: SourceTable, of: number, batchRows: number, progress: (p: CopyProgress) => void): Promise<void> {
  let copied = 0;
  progress({ kind: 'rows', table: table.name, copied, of });
  for (const page of source.pages(table, rowsPerInsert(table.columns.length, batchRows))) {
    await insertRows(tx, table, page);
    copied += page.length;
    progress({ kind: 'rows', table: table.name, copied, of });
  }
}

/** Inside the copy's transaction: counts, the audit chain and the images, as the target now holds them. */
async function verify(tx: SqlExecutor, counts: readonly TableCount[], images: readonly ImageRef[], clock: Clock, progress: (p: CopyProgress) => void) {
  progress({ kind: 'verify', step: 'rows' });
  const wrong: string[] = [];
  for (const c of counts) {
    const row = await tx.get<{ n: number }>(`SELECT count(*) AS n FROM ${quoteIdent(c.name)}`);
    if (Number(row?.n) !== c.rows) wrong.push(`${c.name}: ${c.rows} in the source, ${Number(row?.n)} in the target`);
  }
  if (wrong.length > 0) throw new PlatformError('BULWARK_ERR_INTERNAL', `row counts differ after the copy, nothing was kept: ${wrong.join('; ')}`);
  progress({ kind: 'verify', step: 'audit' });
  const client = inTransaction(tx);
  const report = await new AuditService(new SqlAuditRepository(client), clock).verify();
  if (!report.ok) {
    throw new PlatformError('BULWARK_ERR_CONFLICT', `the audit chain does not verify on the target, nothing was kept: ${report.message}. Check the source's chain with \`bulwark audit-log verify\` on the embedded node`, { details: { audit: report } });
  }
  progress({ kind: 'verify', step: 'images' });
  for (const image of images) {
    if (!(await storedImageMatches(client, image))) throw new PlatformError('BULWARK_ERR_FIRMWARE_UNAVAILABLE', `firmware ${image.id} read back from the target does not match its SHA-256, nothing was kept`);
  }
  return { entriesChecked: report.entriesChecked, headSeq: report.headSeq };
}
