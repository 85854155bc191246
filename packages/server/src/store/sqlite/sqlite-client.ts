import { closeSync, openSync } from 'node:fs';
import Database from 'better-sqlite3';
import { PlatformError } from '@bulwark/core';
import type { SqlClient, SqlExecutor, SqlValue } from '../sql-client.js';

/**
 * SqlClient on one better-sqlite3 connection in WAL mode. Statements are synchronous, so
 * this client serialises transactions with a promise chain: while one is open, other
 * callers wait instead of slipping their statements into it.
 */
export class SqliteClient implements SqlClient {
  readonly engine = 'sqlite' as const;
  readonly #db: Database.Database;
  readonly #statements = new Map<string, { stmt: Database.Statement; order: number[] }>();
  #tail: Promise<unknown> = Promise.resolve();

  constructor(filename: string) {
    try {
      // Owner-only from the start: SQLite gives the -wal and -shm files the database file's mode.
      if (filename !== ':memory:') closeSync(openSync(filename, 'a', 0o600));
      this.#db = new Database(filename);
      this.#db.pragma('journal_mode = WAL');
      this.#db.pragma('synchronous = NORMAL');
      this.#db.pragma('foreign_keys = ON');
      this.#db.pragma('busy_timeout = 5000');
    } catch (cause) {
      throw new PlatformError('BULWARK_ERR_STORE_UNAVAILABLE', `cannot open SQLite database ${filename}: ${(cause as Error).message}`, { cause });
    }
  }

  all<T extends object>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    return this.#serial(() => this.#exec.all<T>(sql, params));
  }

  get<T extends object>(sql: string, params: readonly SqlValue[] = []): Promise<T | undefined> {
    return this.#serial(() => this.#exec.get<T>(sql, params));
  }

  run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    return this.#serial(() => this.#exec.run(sql, params));
  }

  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.#serial(async () => {
      this.#db.exec('BEGIN IMMEDIATE');
      try {
        const result = await fn(this.#exec);
        this.#db.exec('COMMIT');
        return result;
      } catch (err) {
        if (this.#db.inTransaction) this.#db.exec('ROLLBACK');
        throw err;
      }
    });
  }

  async ping(): Promise<void> {
    await this.get('SELECT 1 AS one');
  }

  async close(): Promise<void> {
    await this.#tail.catch(() => undefined);
    this.#db.close();
  }

  /** Runs one unit of work after every earlier one has settled. */
  #serial<T>(work: () => Promise<T> | T): Promise<T> {
    const next = this.#tail.then(work, work);
    this.#tail = next.catch(() => undefined);
    return next;
  }

  /** Executes directly, without queueing; used inside a transaction and by the queued calls. */
  readonly #exec: SqlExecutor = {
    all: async <T extends object>(sql: string, params: readonly SqlValue[] = []) => {
      const { stmt, args } = this.#prepare(sql, params);
      return guarded(() => stmt.all(...args) as T[]);
    },
    get: async <T extends object>(sql: string, params: readonly SqlValue[] = []) => {
      const { stmt, args } = this.#prepare(sql, params);
      return guarded(() => stmt.get(...args) as T | undefined);
    },
    run: async (sql: string, params: readonly SqlValue[] = []) => {
      const { stmt, args } = this.#prepare(sql, params);
      return guarded(() => stmt.run(...args).changes);
    },
  };

  /** Prepares (once) a statement written with `$n` placeholders and orders its arguments. */
  #prepare(sql: string, params: readonly SqlValue[]): { stmt: Database.Statement; args: SqlValue[] } {
    let cached = this.#statements.get(sql);
    if (!cached) {
      const order: number[] = [];
      const text = sql.replace(/\$(\d+)/g, (_m, n: string) => {
        order.push(Number(n) - 1);
        return '?';
      });
      try {
        cached = { stmt: this.#db.prepare(text), order };
      } catch (cause) {
        throw new PlatformError('BULWARK_ERR_STORE_UNAVAILABLE', `SQLite rejected a statement: ${(cause as Error).message}`, { cause });
      }
      this.#statements.set(sql, cached);
    }
    return { stmt: cached.stmt, args: cached.order.map((i) => params[i] ?? null) };
  }

  /** Runs a script of several statements (migrations only). */
  execScript(sql: string): void {
    this.#db.exec(sql);
  }
}

/** Constraint violations are the caller's conflict; any other engine error means the store failed. */
function guarded<T>(fn: () => T): T {
  try {
    return fn();
  } catch (cause) {
    const code = (cause as { code?: string }).code ?? '';
    if (code.startsWith('SQLITE_CONSTRAINT')) throw new PlatformError('BULWARK_ERR_CONFLICT', `SQLite: ${(cause as Error).message}`, { cause });
    throw new PlatformError('BULWARK_ERR_STORE_UNAVAILABLE', `SQLite: ${(cause as Error).message}`, { cause });
  }
}
