import { PlatformError } from '@bulwark/core';
import type { BatchResult, BatchStatement, SqlClient, SqlExecutor, SqlValue } from '../sql-client.js';
import { type SourceTable, quoteIdent } from './sqlite-source.js';

/** PostgreSQL takes at most 65535 parameters in one statement. */
const MAX_PARAMS = 60_000;

/** Rows the migrations insert into an empty store (the audit chain's genesis head): replaced by the source's. */
export const SEEDED_TABLES: ReadonlySet<string> = new Set(['audit_head']);

/**
 * The repositories run inside the copy's one transaction through this: their statements go
 * to `tx`, and a repository's own transaction becomes part of it.
 */
export function inTransaction(tx: SqlExecutor): SqlClient {
  return {
    engine: 'postgres',
    all: (sql, params) => tx.all(sql, params),
    get: (sql, params) => tx.get(sql, params),
    run: (sql, params) => tx.run(sql, params),
    runMany: (sql, paramsList) => tx.runMany(sql, paramsList),
    transaction: (fn) => fn(tx),
    batch: async (statements: readonly BatchStatement[]): Promise<BatchResult> => {
      const changed: number[][] = [];
      for (const s of statements) changed.push(await tx.runMany(s.sql, s.paramsList));
      return { committed: true, changed };
    },
    ping: async () => undefined,
    close: async () => undefined,
  };
}

/** The columns of every table in the target's current schema (the first on its search path). */
export async function targetColumns(db: SqlExecutor): Promise<Map<string, Set<string>>> {
  const schema = await db.get<{ name: string | null }>('SELECT current_schema() AS name');
  if (!schema?.name) throw new PlatformError('BULWARK_ERR_CONFIG_INVALID', "the target has no schema to write to: the schema named in the URL's search_path does not exist");
  const rows = await db.all<{ table_name: string; column_name: string }>('SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema()');
  const out = new Map<string, Set<string>>();
  for (const r of rows) {
    const cols = out.get(r.table_name) ?? new Set<string>();
    cols.add(r.column_name);
    out.set(r.table_name, cols);
  }
  return out;
}

/** Every source table, with every column, exists in the target (its schema was made by the same migrations). */
export function checkShape(tables: readonly SourceTable[], target: Map<string, Set<string>>): void {
  const problems: string[] = [];
  for (const t of tables) {
    const cols = target.get(t.name);
    if (!cols) problems.push(`table ${t.name} is missing`);
    else for (const c of t.columns) if (!cols.has(c)) problems.push(`column ${t.name}.${c} is missing`);
  }
  if (problems.length > 0) throw new PlatformError('BULWARK_ERR_CONFLICT', `the target's schema does not match the source's: ${problems.join('; ')}`);
}

/** Names the tables of the target that already hold data; the copy goes only into an empty store. */
export async function nonEmptyTables(db: SqlExecutor, tables: Iterable<string>): Promise<string[]> {
  const full: string[] = [];
  for (const name of tables) {
    const sql = name === 'audit_head' ? 'SELECT 1 AS one FROM audit_head WHERE seq <> 0 LIMIT 1' : `SELECT 1 AS one FROM ${quoteIdent(name)} LIMIT 1`;
    if (await db.get(sql)) full.push(name);
  }
  return full;
}

/** How many rows go into one multi-row INSERT for a table of `columns` columns. */
export function rowsPerInsert(columns: number, wanted: number): number {
  return Math.max(1, Math.min(wanted, Math.floor(MAX_PARAMS / Math.max(1, columns))));
}

/** One multi-row INSERT of `rows` (each the table's columns in order). */
export async function insertRows(tx: SqlExecutor, table: SourceTable, rows: readonly unknown[][]): Promise<void> {
  if (rows.length === 0) return;
  const width = table.columns.length;
  const values: SqlValue[] = [];
  const tuples: string[] = [];
  for (const row of rows) {
    const marks: string[] = [];
    for (let i = 0; i < width; i += 1) {
      values.push((row[i] ?? null) as SqlValue);
      marks.push(`$${values.length}`);
    }
    tuples.push(`(${marks.join(', ')})`);
  }
  await tx.run(`INSERT INTO ${quoteIdent(table.name)} (${table.columns.map(quoteIdent).join(', ')}) VALUES ${tuples.join(', ')}`, values);
}
