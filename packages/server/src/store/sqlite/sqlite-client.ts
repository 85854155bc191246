import { Worker } from 'node:worker_threads';
import { PlatformError } from '@bulwark/core';
import type { BatchResult, BatchStatement, SqlClient, SqlExecutor, SqlValue } from '../sql-client.js';

interface Reply {
  readonly id: number;
  readonly ok: boolean;
  readonly result?: unknown;
  readonly error?: { message: string; code?: string };
}

/**
 * SqlClient on one better-sqlite3 connection in WAL mode, run in a worker thread so that
 * statements and commits (with their fsync) never block the event loop. The worker runs
 * requests in the order they are made, so a one-request operation (a statement, a
 * `batch`) is sent at once and several can be under way together. The requests made in one
 * turn of the event loop travel in one message (answered by one): a message between threads
 * costs about 45 µs of CPU here, a request inside a shared one about 8 µs, and a transition
 * or a telemetry batch makes several at a time. A `transaction` spans
 * several messages on the one connection, so it is serialised with a promise chain: while
 * one is open or waiting, later callers queue behind it instead of slipping their
 * statements into it, and call order is kept.
 */
export class SqliteClient implements SqlClient {
  readonly engine = 'sqlite' as const;
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  #nextId = 1;
  #tail: Promise<unknown> = Promise.resolve();
  /** Units of work on the promise chain (transactions, and what queued behind them). */
  #queued = 0;
  #closed = false;
  /** Requests made in this turn of the event loop, sent together at its end. */
  #outbox: Record<string, unknown>[] = [];
  #sending = false;
  /** One-message operations waiting behind a transaction, started together when their turn comes. */
  #behind: (() => Promise<void>)[] | undefined;

  private constructor(worker: Worker) {
    this.#worker = worker;
    worker.on('message', (replies: readonly Reply[]) => {
      for (const reply of replies) {
        const waiter = this.#pending.get(reply.id);
        if (!waiter) continue;
        this.#pending.delete(reply.id);
        if (reply.ok) waiter.resolve(reply.result);
        else waiter.reject(toPlatformError(reply.error ?? { message: 'unknown SQLite error' }));
      }
    });
    worker.on('error', (err) => this.#failAll(err));
    worker.on('exit', () => this.#failAll(new Error('the SQLite worker stopped')));
  }

  /** Opens (creating if needed) the database file; rejects with STORE_UNAVAILABLE if it cannot. */
  static open(filename: string): Promise<SqliteClient> {
    const worker = new Worker(new URL('./sqlite-worker.mjs', import.meta.url), { workerData: { filename } });
    return new Promise((resolve, reject) => {
      const fail = (err: { message: string; code?: string }) => {
        void worker.terminate();
        reject(new PlatformError('BULWARK_ERR_STORE_UNAVAILABLE', `cannot open SQLite database ${filename}: ${err.message}`));
      };
      worker.once('error', fail);
      worker.once('message', (reply: Reply) => {
        worker.removeListener('error', fail);
        if (reply.ok) resolve(new SqliteClient(worker));
        else fail(reply.error ?? { message: 'unknown error' });
      });
    });
  }

  all<T extends object>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    return this.#single(() => this.#exec.all<T>(sql, params));
  }

  get<T extends object>(sql: string, params: readonly SqlValue[] = []): Promise<T | undefined> {
    return this.#single(() => this.#exec.get<T>(sql, params));
  }

  run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    return this.#single(() => this.#exec.run(sql, params));
  }

  runMany(sql: string, paramsList: readonly (readonly SqlValue[])[]): Promise<number[]> {
    return this.#single(() => this.#exec.runMany(sql, paramsList));
  }

  batch(statements: readonly BatchStatement[]): Promise<BatchResult> {
    return this.#single(async () => (await this.#call({ op: 'batch', statements })) as BatchResult);
  }

  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    // What is queued from now on goes behind this transaction.
    this.#behind = undefined;
    return this.#serial(async () => {
      // BEGIN travels with the transaction's first statements and COMMIT with its last ones:
      // the worker runs a statement of the transaction only inside it, and refuses the ones
      // after a failure (and the commit), so nothing runs outside it or half of it commits.
      const [id, begun] = this.#request({ op: 'begin' });
      begun.catch(() => undefined);
      try {
        const result = await fn(this.#executor(id));
        await this.#call({ op: 'commit', tx: id });
        return result;
      } catch (err) {
        await this.#call({ op: 'rollback', tx: id }).catch(() => undefined);
        // A BEGIN that failed is why everything after it was refused.
        throw (
          (await begun.then(
            () => undefined,
            (e: unknown) => e,
          )) ?? err
        );
      }
    });
  }

  async ping(): Promise<void> {
    await this.get('SELECT 1 AS one');
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#tail.catch(() => undefined);
    await this.#call({ op: 'close' }).catch(() => undefined);
    await this.#worker.terminate();
  }

  /** Runs one unit of work after every earlier one on the chain has settled. */
  #serial<T>(work: () => Promise<T>): Promise<T> {
    this.#queued += 1;
    const next = this.#tail.then(work, work).finally(() => {
      this.#queued -= 1;
    });
    this.#tail = next.catch(() => undefined);
    return next;
  }

  /**
   * A one-message operation: posted now, unless a transaction is open or waiting. Then it goes
   * behind it, together with the others that come before the next transaction: they are posted
   * in one turn (one message), not one after the other's answer.
   */
  #single<T>(work: () => Promise<T>): Promise<T> {
    if (this.#queued === 0) return work();
    let group = this.#behind;
    if (!group) {
      const starters: (() => Promise<void>)[] = [];
      group = starters;
      this.#behind = starters;
      void this.#serial(async () => {
        if (this.#behind === starters) this.#behind = undefined;
        await Promise.all(starters.map((start) => start()));
      });
    }
    return new Promise<T>((resolve, reject) => {
      group.push(() => work().then(resolve, reject));
    });
  }

  #call(message: Record<string, unknown>): Promise<unknown> {
    return this.#request(message)[1];
  }

  /** Posts a request (sent at the end of this turn, with the others made in it); its id and its answer. */
  #request(message: Record<string, unknown>): [number, Promise<unknown>] {
    const id = this.#nextId++;
    if (this.#closed && message.op !== 'close') return [id, Promise.reject(new PlatformError('BULWARK_ERR_STORE_UNAVAILABLE', 'the SQLite store is closed'))];
    return [
      id,
      new Promise((resolve, reject) => {
        this.#pending.set(id, { resolve, reject });
        this.#outbox.push({ id, ...message });
        if (!this.#sending) {
          this.#sending = true;
          setImmediate(this.#send);
        }
      }),
    ];
  }

  /** Sends the requests made since the last send, in the order they were made. */
  readonly #send = (): void => {
    this.#sending = false;
    const requests = this.#outbox;
    this.#outbox = [];
    this.#worker.postMessage(requests);
  };

  #failAll(err: unknown): void {
    for (const w of this.#pending.values()) w.reject(new PlatformError('BULWARK_ERR_STORE_UNAVAILABLE', `SQLite: ${(err as Error).message}`, { cause: err }));
    this.#pending.clear();
  }

  /** Executes directly, without queueing: the queued calls (`tx` undefined), or the statements of the transaction begun by request `tx`. */
  #executor(tx?: number): SqlExecutor {
    const call = (message: Record<string, unknown>) => this.#call(tx === undefined ? message : { ...message, tx });
    return {
      all: async <T extends object>(sql: string, params: readonly SqlValue[] = []) => (await call({ op: 'all', sql, params })) as T[],
      get: async <T extends object>(sql: string, params: readonly SqlValue[] = []) => ((await call({ op: 'get', sql, params })) ?? undefined) as T | undefined,
      run: async (sql: string, params: readonly SqlValue[] = []) => (await call({ op: 'run', sql, params })) as number,
      runMany: async (sql: string, paramsList: readonly (readonly SqlValue[])[]) => (await call({ op: 'runMany', sql, paramsList })) as number[],
    };
  }

  readonly #exec = this.#executor();
}

/** Constraint violations are the caller's conflict; any other engine error means the store failed. */
function toPlatformError(err: { message: string; code?: string }): PlatformError {
  if ((err.code ?? '').startsWith('SQLITE_CONSTRAINT')) return new PlatformError('BULWARK_ERR_CONFLICT', `SQLite: ${err.message}`);
  return new PlatformError('BULWARK_ERR_STORE_UNAVAILABLE', `SQLite: ${err.message}`);
}
