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

/** One statement of a `batch`, run once per parameter list. */
export interface BatchStatement {
  readonly sql: string;
  readonly paramsList: readonly (readonly SqlValue[])[];
  /** When set, every run must change exactly this many rows; otherwise the whole batch rolls back. */
  readonly expectChanged?: number;
}

/** What a `batch` did: committed with the rows each run changed, or rolled back at the first run that broke its expectation. */
export type BatchResult = { readonly committed: true; readonly changed: readonly (readonly number[])[] } | { readonly committed: false; readonly statement: number; readonly changed: readonly number[] };

export interface SqlClient extends SqlExecutor {
  readonly engine: SqlEngine;
  /**
   * Runs `fn` in one transaction: committed when it resolves, rolled back when it throws.
   * Statements issued through `tx` belong to the transaction; other callers never see or join them.
   */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /**
   * Runs fixed statements in one transaction, in one round trip where the engine allows it
   * (the hot write path: a group commit is one message to the SQLite worker, not four).
   * When a run of a statement with `expectChanged` changes another number of rows, everything
   * rolls back and the result names that statement with the rows each of its runs changed
   * (all of its runs are tried, so the caller learns every conflict at once). Batches run in
   * call order, and a write or transaction posted after a batch starts after it has ended.
   */
  batch(statements: readonly BatchStatement[]): Promise<BatchResult>;
  /** Resolves when the engine answers a trivial query. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
