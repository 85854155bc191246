import pg from 'pg';
import { PlatformError } from '@bulwark/core';
import type { BatchResult, BatchStatement, SqlClient, SqlExecutor, SqlValue } from '../sql-client.js';

const INT8_OID = 20;
const NUMERIC_OID = 1700;

export interface PostgresClientOptions {
  readonly url: string;
  /** Schema to put first on the search path (tests isolate themselves this way). */
  readonly schema?: string;
  readonly maxConnections?: number;
}

/** Integers are stored as BIGINT; they stay below 2^53 (milliseconds, counters). */
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8_OID || oid === NUMERIC_OID) return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format);
  },
};

/** Maps engine errors to what they mean for the caller. */
function wrap(cause: unknown): PlatformError {
  const code = (cause as { code?: string }).code;
  // 23xxx: integrity (the caller's conflict); 22xxx: data exceptions (a value out of range: the caller's input).
  const errCode = code === '23505' || code === '23503' ? 'BULWARK_ERR_CONFLICT' : code?.startsWith('22') ? 'BULWARK_ERR_BAD_REQUEST' : 'BULWARK_ERR_STORE_UNAVAILABLE';
  return new PlatformError(errCode, `PostgreSQL: ${(cause as Error).message}`, { cause });
}

function executor(q: (text: string, values: SqlValue[]) => Promise<pg.QueryResult>): SqlExecutor {
  return {
    async all<T extends object>(sql: string, params: readonly SqlValue[] = []) {
      return (await q(sql, [...params])).rows as T[];
    },
    async get<T extends object>(sql: string, params: readonly SqlValue[] = []) {
      return (await q(sql, [...params])).rows[0] as T | undefined;
    },
    async run(sql: string, params: readonly SqlValue[] = []) {
      return (await q(sql, [...params])).rowCount ?? 0;
    },
    async runMany(sql: string, paramsList: readonly (readonly SqlValue[])[]) {
      const changed: number[] = [];
      for (const params of paramsList) changed.push((await q(sql, [...params])).rowCount ?? 0);
      return changed;
    },
  };
}

const ROLL_BACK = Symbol('roll back the batch');

/** SqlClient on a pg connection pool. */
export class PostgresClient implements SqlClient {
  readonly engine = 'postgres' as const;
  readonly #pool: pg.Pool;
  readonly #exec: SqlExecutor;
  /**
   * Settles when the batches posted so far have: writes posted after a batch start after it
   * (as they do on SQLite's single thread), while pool connections would otherwise let a
   * later write overtake it (an update arriving before the insert it follows).
   */
  #batches: Promise<unknown> = Promise.resolve();

  constructor(options: PostgresClientOptions) {
    const config: pg.PoolConfig = { connectionString: options.url, max: options.maxConnections ?? 10, types };
    if (options.schema !== undefined) config.options = `-c search_path=${options.schema}`;
    this.#pool = new pg.Pool(config);
    // An idle client that loses its connection must not crash the process.
    this.#pool.on('error', () => undefined);
    this.#exec = executor(async (text, values) => {
      try {
        return await this.#pool.query(text, values);
      } catch (cause) {
        throw wrap(cause);
      }
    });
  }

  all<T extends object>(sql: string, params?: readonly SqlValue[]): Promise<T[]> {
    return this.#exec.all<T>(sql, params);
  }

  get<T extends object>(sql: string, params?: readonly SqlValue[]): Promise<T | undefined> {
    return this.#exec.get<T>(sql, params);
  }

  run(sql: string, params?: readonly SqlValue[]): Promise<number> {
    return this.#batches.then(() => this.#exec.run(sql, params));
  }

  runMany(sql: string, paramsList: readonly (readonly SqlValue[])[]): Promise<number[]> {
    return this.#batches.then(() => this.#exec.runMany(sql, paramsList));
  }

  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    await this.#batches;
    return this.#transaction(fn);
  }

  async #transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (cause) {
      throw wrap(cause);
    }
    // The first statement that failed: it fails the transaction even when fn did not wait for
    // it (PostgreSQL then answers COMMIT by rolling back, which pg reports as a success).
    let failure: PlatformError | undefined;
    const tx = executor(async (text, values) => {
      try {
        const result = await client.query(text, values);
        // ROLLBACK TO a savepoint ends the failed state.
        if (/^\s*ROLLBACK\s+(TRANSACTION\s+)?TO\b/i.test(text)) failure = undefined;
        return result;
      } catch (cause) {
        const err = wrap(cause);
        failure ??= err;
        throw err;
      }
    });
    // A connection lost between statements is reported as an event, not by a query: without a listener it would crash the process.
    let lost: Error | undefined;
    const onLost = (err: Error) => {
      lost = err;
    };
    client.on('error', onLost);
    try {
      await client.query('BEGIN');
      const result = await fn(tx);
      const committed = await client.query('COMMIT');
      if (committed.command === 'ROLLBACK' || failure) {
        // The failed statement's own answer may still be on its way.
        await new Promise<void>((resolve) => setImmediate(resolve));
        throw failure ?? new PlatformError('BULWARK_ERR_STORE_UNAVAILABLE', 'PostgreSQL rolled the transaction back: a statement in it failed');
      }
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.off('error', onLost);
      // A broken connection is closed, not handed to the next caller.
      client.release(lost);
    }
  }

  batch(statements: readonly BatchStatement[]): Promise<BatchResult> {
    const done = this.#batches.then(() => this.#batch(statements));
    this.#batches = done.catch(() => undefined);
    return done;
  }

  async #batch(statements: readonly BatchStatement[]): Promise<BatchResult> {
    let broken: BatchResult | undefined;
    try {
      return await this.#transaction(async (tx) => {
        const changed: number[][] = [];
        for (const [i, s] of statements.entries()) {
          const counts = await tx.runMany(s.sql, s.paramsList);
          if (s.expectChanged !== undefined && counts.some((n) => n !== s.expectChanged)) {
            broken = { committed: false, statement: i, changed: counts };
            throw ROLL_BACK;
          }
          changed.push(counts);
        }
        return { committed: true, changed };
      });
    } catch (err) {
      if (err === ROLL_BACK && broken) return broken;
      throw err;
    }
  }

  async ping(): Promise<void> {
    await this.get('SELECT 1 AS one');
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}
