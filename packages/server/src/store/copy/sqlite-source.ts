import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { PlatformError } from '@bulwark/core';
import type { DataKeyRecord, SealedSecret } from '../../secrets/index.js';
import { FOLD_PROGRESS_SQLITE, FOLD_ROLLUPS_SQLITE } from '../sql/telemetry.js';

/** A table of the embedded store as the copy sees it: its columns, and the tables it references. */
export interface SourceTable {
  readonly name: string;
  readonly columns: readonly string[];
  readonly references: readonly string[];
}

/**
 * Tables that are bookkeeping of the engine or of the migrator, never copied; and the
 * telemetry feed and the fleet counts, which the target's triggers fill again as the readings
 * and the devices are copied in; and how far SQLite's rollup fold has gone (the copy folds
 * what is pending first: PostgreSQL folds as it stores).
 */
const NOT_COPIED = new Set(['schema_migrations', 'telemetry_feed', 'telemetry_rollup_progress', 'device_counts', 'device_count_deltas']);

export const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;

/**
 * The embedded store, opened for a copy: read from the main thread (a command line tool has
 * nothing else to do), in pages by rowid so that a large table is never read whole. The
 * connection holds SQLite's exclusive lock from open to close: a node that still runs on the
 * file makes the open fail, and a node started during the copy cannot open the file.
 */
export class SqliteSource {
  private constructor(
    private readonly db: Database.Database,
    readonly file: string,
  ) {}

  static open(file: string): SqliteSource {
    if (!existsSync(file)) throw new PlatformError('BULWARK_ERR_NOT_FOUND', `no Bulwark store at ${file}: name the data directory of the embedded node, or sqlite:<path to its database file>`);
    let db: Database.Database;
    try {
      db = new Database(file, { fileMustExist: true, timeout: 0 });
    } catch (cause) {
      throw new PlatformError('BULWARK_ERR_STORE_UNAVAILABLE', `cannot open ${file}: ${(cause as Error).message}`, { cause });
    }
    try {
      // Exclusive mode keeps the lock taken by the first write transaction until close.
      db.pragma('locking_mode = EXCLUSIVE');
      db.exec('BEGIN EXCLUSIVE');
      db.exec('COMMIT');
    } catch (cause) {
      db.close();
      if ((cause as { code?: string }).code === 'SQLITE_BUSY') {
        throw new PlatformError('BULWARK_ERR_CONFLICT', `${file} is in use: stop the Bulwark node that runs on it (and anything else that has it open), then run this again`, { cause });
      }
      throw new PlatformError('BULWARK_ERR_STORE_UNAVAILABLE', `cannot lock ${file}: ${(cause as Error).message}`, { cause });
    }
    return new SqliteSource(db, file);
  }

  /** Folds the readings a node stored and had not folded into their rollups yet (it stopped before its fold ran). */
  foldPendingRollups(): void {
    this.db.transaction(() => {
      this.db.prepare(FOLD_ROLLUPS_SQLITE).run();
      this.db.prepare(FOLD_PROGRESS_SQLITE).run();
    })();
  }

  /** The migrations applied to this store. */
  migrationIds(): number[] {
    const exists = this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get();
    if (!exists) return [];
    return (this.db.prepare('SELECT id FROM schema_migrations ORDER BY id').all() as { id: number }[]).map((r) => Number(r.id));
  }

  /** Every table to copy, each after the tables it references (so foreign keys hold at every insert). */
  tables(): SourceTable[] {
    const names = (this.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as { name: string }[]).map((r) => r.name).filter((n) => !NOT_COPIED.has(n));
    const byName = new Map(
      names.map((name) => {
        const columns = (this.db.prepare(`PRAGMA table_info(${quoteIdent(name)})`).all() as { name: string }[]).map((c) => c.name);
        const references = (this.db.prepare(`PRAGMA foreign_key_list(${quoteIdent(name)})`).all() as { table: string }[]).map((f) => f.table).filter((t) => t !== name);
        return [name, { name, columns, references: [...new Set(references)] }] as const;
      }),
    );
    const ordered: SourceTable[] = [];
    const placed = new Set<string>();
    const place = (name: string, path: readonly string[]) => {
      if (placed.has(name)) return;
      const table = byName.get(name);
      if (!table) return;
      if (path.includes(name)) throw new PlatformError('BULWARK_ERR_INTERNAL', `foreign keys form a cycle: ${[...path, name].join(' → ')}`);
      for (const ref of table.references) place(ref, [...path, name]);
      placed.add(name);
      ordered.push(table);
    };
    for (const name of names) place(name, []);
    return ordered;
  }

  count(table: string): number {
    return Number((this.db.prepare(`SELECT count(*) AS n FROM ${quoteIdent(table)}`).get() as { n: number }).n);
  }

  /** The rows of a table, `pageRows` at a time, each row its columns' values in order. */
  *pages(table: SourceTable, pageRows: number): Generator<unknown[][]> {
    const cols = table.columns.map(quoteIdent).join(', ');
    const page = this.db.prepare(`SELECT rowid, ${cols} FROM ${quoteIdent(table.name)} WHERE rowid > ? ORDER BY rowid LIMIT ?`).raw(true);
    let after = Number.MIN_SAFE_INTEGER;
    for (;;) {
      const rows = page.all(after, pageRows) as unknown[][];
      if (rows.length === 0) return;
      after = Number(rows[rows.length - 1]![0]);
      yield rows.map((r) => r.slice(1));
      if (rows.length < pageRows) return;
    }
  }

  dataKeys(): DataKeyRecord[] {
    const rows = this.db.prepare('SELECT id, wrapped, master_key_id, created_at, retired_at FROM data_keys ORDER BY created_at, id').all() as { id: string; wrapped: string; master_key_id: string; created_at: number; retired_at: number | null }[];
    return rows.map((r) => ({ id: r.id, wrapped: r.wrapped, masterKeyId: r.master_key_id, createdAt: Number(r.created_at), retiredAt: r.retired_at === null ? null : Number(r.retired_at) }));
  }

  secretNames(): string[] {
    return (this.db.prepare('SELECT name FROM secrets ORDER BY name').all() as { name: string }[]).map((r) => r.name);
  }

  secret(name: string): SealedSecret | undefined {
    const r = this.db.prepare('SELECT name, data_key_id, sealed, updated_at FROM secrets WHERE name = ?').get(name) as { name: string; data_key_id: string; sealed: string; updated_at: number } | undefined;
    return r && { name: r.name, dataKeyId: r.data_key_id, sealed: r.sealed, updatedAt: Number(r.updated_at) };
  }

  /** Firmware artifacts whose image was received (the others have no image to copy). */
  publishedImages(): { id: string; size: number; sha256: string }[] {
    return (this.db.prepare("SELECT id, size, sha256 FROM firmware_artifacts WHERE state = 'published' ORDER BY id").all() as { id: string; size: number; sha256: string }[]).map((r) => ({ id: r.id, size: Number(r.size), sha256: r.sha256 }));
  }

  close(): void {
    this.db.close();
  }
}
