// The SQLite connection, in its own thread. better-sqlite3 is synchronous, so every
// statement (and every fsync on commit) runs here, never on the main event loop.
// Protocol: an array of { id, op, sql?, params?, paramsList?, statements?, tx? } in, run in order;
// an array of { id, ok, result | error } out, one per request (the first reply, to the open, is one object).
// Transactions: `begin` opens one; the requests of a transaction name it (`tx`: the id of its
// begin) and run only inside it, so the first statements can travel with the begin, and the
// commit with the last ones. A failed request fails the requests of its transaction after it,
// and its commit, as on PostgreSQL, until a ROLLBACK TO a savepoint clears it.
// Plain JavaScript on purpose: a worker thread must load without the TypeScript loader.
import { closeSync, openSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

let db;
try {
  // Owner-only from the start: SQLite gives the -wal and -shm files the database file's mode.
  if (workerData.filename !== ':memory:') closeSync(openSync(workerData.filename, 'a', 0o600));
  db = new Database(workerData.filename);
  db.pragma('journal_mode = WAL');
  // FULL: every commit is on disk before it is acknowledged (NORMAL in WAL mode survives a
  // crash of the process but can lose the last commits on power loss).
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  parentPort.postMessage({ id: 0, ok: true, result: null });
} catch (err) {
  parentPort.postMessage({ id: 0, ok: false, error: { message: err.message, code: err.code } });
}

const statements = new Map();

/** Statements are written with $n placeholders (portable with PostgreSQL); SQLite gets `?` and reordered arguments. */
function prepare(sql) {
  let cached = statements.get(sql);
  if (!cached) {
    const order = [];
    const text = sql.replace(/\$(\d+)/g, (_m, n) => {
      order.push(Number(n) - 1);
      return '?';
    });
    cached = { stmt: db.prepare(text), order };
    statements.set(sql, cached);
  }
  return cached;
}

const args = (cached, params) => cached.order.map((i) => (params[i] === undefined ? null : params[i]));

/** Fixed statements in one transaction; rolls back at the first run that changes other than `expectChanged` rows. */
function batch(statements) {
  db.exec('BEGIN IMMEDIATE');
  try {
    const changed = [];
    for (let i = 0; i < statements.length; i += 1) {
      const s = statements[i];
      const c = prepare(s.sql);
      const counts = s.paramsList.map((p) => c.stmt.run(...args(c, p)).changes);
      if (s.expectChanged !== undefined && counts.some((n) => n !== s.expectChanged)) {
        db.exec('ROLLBACK');
        return { committed: false, statement: i, changed: counts };
      }
      changed.push(counts);
    }
    db.exec('COMMIT');
    return { committed: true, changed };
  } catch (err) {
    if (db.inTransaction) db.exec('ROLLBACK');
    throw err;
  }
}

/** The open transaction: the id of its begin, and its first failure (null while none failed). */
let open = null;

const ROLLBACK_TO = /^\s*ROLLBACK\s+(TRANSACTION\s+)?TO\b/i;

/** Why a request of transaction `tx` may not run now; undefined when it may. */
function refusal(m) {
  if (open === null || open.id !== m.tx || !db.inTransaction) return { message: 'not run: its transaction did not begin, or has ended', code: 'BULWARK_TX_GONE' };
  if (open.failure && !(m.op === 'run' && ROLLBACK_TO.test(m.sql))) return { message: `not run: an earlier statement of its transaction failed: ${open.failure.message}`, code: open.failure.code };
  return undefined;
}

function answer(m) {
  if (m.tx !== undefined && m.op !== 'rollback') {
    const refused = refusal(m);
    // The commit of a failed transaction answers with the failure itself.
    if (refused) return { id: m.id, ok: false, error: m.op === 'commit' && open?.id === m.tx && open.failure ? open.failure : refused };
  }
  try {
    const result = run(m);
    if (m.tx !== undefined && open?.failure && ROLLBACK_TO.test(m.sql ?? '')) open.failure = null;
    return { id: m.id, ok: true, result };
  } catch (err) {
    const error = { message: err.message, code: err.code };
    if (m.tx !== undefined && open?.id === m.tx && !open.failure) open.failure = error;
    return { id: m.id, ok: false, error };
  }
}

function run(m) {
  if (m.op === 'all') {
    const c = prepare(m.sql);
    return c.stmt.all(...args(c, m.params));
  }
  if (m.op === 'get') {
    const c = prepare(m.sql);
    return c.stmt.get(...args(c, m.params)) ?? null;
  }
  if (m.op === 'run') {
    const c = prepare(m.sql);
    return c.stmt.run(...args(c, m.params)).changes;
  }
  if (m.op === 'runMany') {
    const c = prepare(m.sql);
    return m.paramsList.map((p) => c.stmt.run(...args(c, p)).changes);
  }
  if (m.op === 'batch') return batch(m.statements);
  if (m.op === 'begin') {
    db.exec('BEGIN IMMEDIATE');
    open = { id: m.id, failure: null };
    return null;
  }
  if (m.op === 'commit') {
    db.exec('COMMIT');
    open = null;
    return null;
  }
  // Also after SQLite ended the transaction itself (some errors roll it back whole).
  if (m.op === 'rollback') {
    if (open !== null && open.id !== m.tx) return null;
    open = null;
    if (db.inTransaction) db.exec('ROLLBACK');
    return null;
  }
  if (m.op === 'close') {
    db.close();
    return null;
  }
  throw new Error(`unknown operation ${m.op}`);
}

parentPort.on('message', (requests) => {
  parentPort.postMessage(requests.map(answer));
});
