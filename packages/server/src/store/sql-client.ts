/**
 * The one port every SQL engine implements. Repositories are written once against it in
 * portable SQL: `$1`-style placeholders, timestamps as integer milliseconds, JSON as text,
 * flags as nullable timestamps rather than booleans. See docs/decisions/0002-one-sql-dialect.md.
 */
export type SqlValue = string | number | bigint | null | Buffer;

export interface SqlExecutor {
  /** All rows of a query. */
  all<T extends object>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
  /** The first row of a query, or undefined. */
  get<T extends object>(sql: string, params?: readonly SqlValue[]): Promise<T | undefined>;
  /** A statement without rows; resolves with the number of rows it changed. */
  run(sql: string, params?: readonly SqlValue[]): Promise<number>;
  /** The same statement once per parameter list, in order, in one round trip; the rows each changed. */
  runMany(sql: string, paramsList: readonly (readonly SqlValue[])[]): Promise<number[]>;
}

export type SqlEngine = 'sqlite' | 'postgres';

export interface SqlClient extends SqlExecutor {
  readonly engine: SqlEngine;
  /**
   * Runs `fn` in one transaction: committed when it resolves, rolled back when it throws.
   * Statements issued through `tx` belong to the transaction; other callers never see or join them.
   */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /** Resolves when the engine answers a trivial query. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
