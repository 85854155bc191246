// The SQLite connection, in its own thread. better-sqlite3 is synchronous, so every
// statement (and every fsync on commit) runs here, never on the main event loop.
// Protocol: an array of { id, op, sql?, params?, paramsList?, statements? } in, run in order;
// an array of { id, ok, result | error } out, one per request (the first reply, to the open, is one object).
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

function answer(m) {
  try {
    let result = null;
    if (m.op === 'all') { const c = prepare(m.sql); result = c.stmt.all(...args(c, m.params)); }
    else if (m.op === 'get') { const c = prepare(m.sql); result = c.stmt.get(...args(c, m.params)) ?? null; }
    else if (m.op === 'run') { const c = prepare(m.sql); result = c.stmt.run(...args(c, m.params)).changes; }
    else if (m.op === 'runMany') { const c = prepare(m.sql); result = m.paramsList.map((p) => c.stmt.run(...args(c, p)).changes); }
    else if (m.op === 'batch') result = batch(m.statements);
    else if (m.op === 'exec') db.exec(m.sql);
    else if (m.op === 'inTransaction') result = db.inTransaction;
    else if (m.op === 'close') { db.close(); }
    else throw new Error(`unknown operation ${m.op}`);
    return { id: m.id, ok: true, result };
  } catch (err) {
    return { id: m.id, ok: false, error: { message: err.message, code: err.code } };
  }
}

parentPort.on('message', (requests) => {
  parentPort.postMessage(requests.map(answer));
});
