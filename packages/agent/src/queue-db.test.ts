import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, it, type TestContext } from 'node:test';
import Database from 'better-sqlite3';
import { QUEUE_SCHEMA_VERSION, QueueDatabase } from './queue-db.js';
import { type QueueLimits, SqliteQueue } from './queue.js';

const DRIVER = new URL('./testing/queue-crash-driver.ts', import.meta.url).pathname;
const ROOMY: QueueLimits = { maxItems: 1000, maxBytes: 1_000_000, maxAgeMs: 86_400_000 };

function tempFile(t: TestContext, name = 'queues.db'): string {
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-queue-db-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, name);
}

function shared(t: TestContext, file = tempFile(t)): QueueDatabase {
  const db = new QueueDatabase(file);
  t.after(() => db.close());
  return db;
}

const item = (owner: string, n: number) => ({ topic: `devices/${owner}/telemetry`, body: JSON.stringify({ owner, n }), boot: 'b', mono: n });
const ns = (q: SqliteQueue) => q.after(0, 10_000).map((r) => (JSON.parse(r.body) as { n: number }).n);

/**
 * Commit records in the WAL since its last reset: frames whose header carries the database
 * size after a commit (non-zero) and the WAL header's salts. Read from the file, not from
 * the code under test.
 */
function walCommits(file: string): number {
  const wal = readFileSync(`${file}-wal`);
  if (wal.length < 32) return 0;
  const pageSize = wal.readUInt32BE(8);
  const salt = [wal.readUInt32BE(16), wal.readUInt32BE(20)];
  let commits = 0;
  for (let at = 32; at + 24 + pageSize <= wal.length; at += 24 + pageSize) {
    if (wal.readUInt32BE(at + 8) !== salt[0] || wal.readUInt32BE(at + 12) !== salt[1]) break;
    if (wal.readUInt32BE(at + 4) !== 0) commits += 1;
  }
  return commits;
}

describe('shared queue database: many devices in one file', () => {
  it("keeps each owner's rows, bounds, drops and acknowledgements apart", async (t) => {
    let now = 1_000_000;
    const db = shared(t);
    const a = new SqliteQueue({ db, owner: 'a' }, { maxItems: 3, maxBytes: 1_000_000, maxAgeMs: 10_000 }, () => now);
    const b = new SqliteQueue({ db, owner: 'b' }, { ...ROOMY, maxAgeMs: 60_000 }, () => now);
    const c = new SqliteQueue({ db, owner: 'c' }, { maxItems: 1000, maxBytes: 200, maxAgeMs: 86_400_000 }, () => now);
    await Promise.all([1, 2, 3, 4, 5].flatMap((n) => [a.add(item('a', n)), b.add(item('b', n)), c.add(item('c', n))]));
    assert.deepEqual(ns(a), [3, 4, 5], 'a is bounded to 3 rows: its two oldest dropped');
    assert.deepEqual(ns(b), [1, 2, 3, 4, 5], 'b keeps all of its rows');
    const cBytes = item('c', 1).topic.length + item('c', 1).body.length;
    assert.equal(c.depth, Math.floor(200 / cBytes), 'c is bounded by its bytes');
    assert.deepEqual([a.counters().dropped_count, b.counters().dropped_count + b.counters().dropped_bytes, c.counters().dropped_bytes], [2, 0, 5 - c.depth]);
    // An acknowledgement names a row id: another owner's id deletes nothing.
    const [bFirst] = b.after(0, 1);
    a.ack([bFirst?.rowId ?? -1]);
    a.flush();
    assert.equal(b.depth, 5);
    assert.equal(a.counters().acked, 0);
    b.ack([bFirst?.rowId ?? -1]);
    b.flush();
    assert.deepEqual([ns(b), b.counters().acked], [[2, 3, 4, 5], 1]);
    // Ages are per owner too: 20 s is past a's bound, not b's.
    now += 20_000;
    assert.equal(b.purgeAged(), 0);
    assert.equal(a.purgeAged(), 3);
    assert.deepEqual([a.depth, a.counters().dropped_age, b.depth, b.counters().dropped_age], [0, 3, 4, 0]);
    assert.deepEqual([a.counters().queued, b.counters().queued, c.counters().queued], [5, 5, 5]);
  });

  it("commits one tick's adds and acks of many queues in one transaction, and resolves them only after it", async (t) => {
    const file = tempFile(t);
    const db = shared(t, file);
    const queues = Array.from({ length: 40 }, (_, k) => new SqliteQueue({ db, owner: `dev-${k}` }, ROOMY));
    await queues[0]?.add(item('dev-0', 0));
    const commitsBefore = db.commits;
    const walBefore = walCommits(file);
    let resolvedBeforeCommit = 0;
    const adds = queues.flatMap((q, k) =>
      [1, 2, 3].map((n) =>
        q.add(item(`dev-${k}`, n)).then(() => {
          if (db.commits === commitsBefore) resolvedBeforeCommit += 1;
        }),
      ),
    );
    queues[0]?.ack(queues[0].after(0, 1).map((r) => r.rowId));
    await Promise.all(adds);
    assert.equal(resolvedBeforeCommit, 0);
    assert.equal(db.commits - commitsBefore, 1, '120 adds and an ack from 40 queues: one group commit');
    assert.equal(walCommits(file) - walBefore, 1, 'one commit record in the WAL');
    assert.deepEqual(
      queues.map((q) => q.depth),
      queues.map(() => 3),
    );
    // Two ticks: two commits.
    await queues[1]?.add(item('dev-1', 4));
    await queues[2]?.add(item('dev-2', 4));
    assert.equal(db.commits - commitsBefore, 3);
    assert.equal(walCommits(file) - walBefore, 3);
  });

  it('with commitDelayMs, gathers adds of several event-loop turns into one commit, resolving none before it', async (t) => {
    const file = tempFile(t);
    const db = new QueueDatabase(file, { commitDelayMs: 50 });
    t.after(() => db.close());
    const queues = Array.from({ length: 5 }, (_, k) => new SqliteQueue({ db, owner: `dev-${k}` }, ROOMY));
    const walBefore = walCommits(file);
    let resolved = 0;
    const adds: Promise<unknown>[] = [];
    // One add per turn (as readings on their own timers arrive), each turn after the last.
    for (const [k, q] of queues.entries()) {
      adds.push(q.add(item(`dev-${k}`, 1)).then(() => (resolved += 1)));
      await new Promise((r) => setImmediate(r));
    }
    assert.equal(resolved, 0, "nothing resolves before the window's commit");
    await Promise.all(adds);
    assert.equal(db.commits, 1, "five turns' adds: one group commit");
    assert.equal(walCommits(file) - walBefore, 1);
    assert.deepEqual(
      queues.map((q) => q.depth),
      [1, 1, 1, 1, 1],
    );
  });

  it('settles every queue of a group before any afterCommit runs, so a callback may commit again at once', async (t) => {
    const db = shared(t);
    const a = new SqliteQueue({ db, owner: 'a' }, ROOMY);
    const b = new SqliteQueue({ db, owner: 'b' }, ROOMY);
    let nested: Promise<void> | undefined;
    a.afterCommit = () => {
      if (nested) return;
      nested = b.add(item('b', 2));
      b.flush();
    };
    const first = await Promise.race([Promise.all([a.add(item('a', 1)), b.add(item('b', 1))]).then(() => 'settled'), new Promise((r) => setTimeout(r, 2000, 'hung'))]);
    assert.equal(first, 'settled');
    await nested;
    assert.deepEqual([ns(a), ns(b)], [[1], [1, 2]]);
  });

  it('rolls a failed group commit back for every queue in it: their adds are refused, depths and counters unchanged, acks kept', async (t) => {
    const file = tempFile(t);
    const db = shared(t, file);
    const a = new SqliteQueue({ db, owner: 'a' }, ROOMY);
    const b = new SqliteQueue({ db, owner: 'b' }, ROOMY);
    await Promise.all([a.add(item('a', 1)), b.add(item('b', 1))]);
    // A write failure in the middle of the group (as a full disk would give), made by a trigger from another connection.
    const other = new Database(file);
    other.exec(`CREATE TRIGGER fail BEFORE INSERT ON queue WHEN NEW.owner = 'b' BEGIN SELECT RAISE(ABORT, 'no space left'); END`);
    const [aFirst] = a.after(0, 1);
    a.ack([aFirst?.rowId ?? -1]);
    const results = await Promise.allSettled([a.add(item('a', 2)), b.add(item('b', 2))]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['rejected', 'rejected'],
    );
    assert.match(String((results[1] as PromiseRejectedResult).reason), /no space left/);
    assert.deepEqual([a.depth, b.depth, a.counters().queued, a.counters().acked], [1, 1, 1, 0]);
    other.exec('DROP TRIGGER fail');
    other.close();
    await a.add(item('a', 3));
    assert.deepEqual([ns(a), a.counters().acked, a.counters().queued], [[3], 1, 2], 'the kept acknowledgement went with the next commit');
  });

  it('closes one queue without closing the file; closing the file closes every queue; one open queue per owner', async (t) => {
    const db = shared(t);
    const a = new SqliteQueue({ db, owner: 'a' }, ROOMY);
    const b = new SqliteQueue({ db, owner: 'b' }, ROOMY);
    assert.throws(() => new SqliteQueue({ db, owner: 'a' }, ROOMY), /already open/);
    const pending = a.add(item('a', 1));
    a.close();
    await pending;
    await assert.rejects(a.add(item('a', 2)), /closed/);
    await b.add(item('b', 1));
    assert.equal(db.open, 1);
    const again = new SqliteQueue({ db, owner: 'a' }, ROOMY);
    assert.deepEqual(ns(again), [1], 'what a closed queue committed is there when it opens again');
    const unflushed = b.add(item('b', 2));
    db.close();
    await unflushed;
    await assert.rejects(b.add(item('b', 3)), /closed/);
    await assert.rejects(again.add(item('a', 3)), /closed/);
    assert.deepEqual(again.after(0, 10), []);
    assert.throws(() => new SqliteQueue({ db, owner: 'c' }, ROOMY), /closed/);
  });

  it('after kill -9, each owner finds its committed, unacknowledged rows and its counters; rows not yet committed are not there', async (t) => {
    const file = tempFile(t);
    const child = spawn(process.execPath, ['--import', 'tsx', DRIVER, file, '4'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines: string[] = [];
    createInterface({ input: child.stdout }).on('line', (l) => lines.push(l));
    const [code, signal] = await new Promise<[number | null, string | null]>((resolve) => child.once('exit', (c, s) => resolve([c, s])));
    assert.deepEqual([code, signal, lines], [null, 'SIGKILL', ['committed']]);
    assert.ok(existsSync(`${file}-wal`), 'the crash left the WAL behind (no clean close)');
    const db = shared(t, file);
    for (let k = 0; k < 4; k += 1) {
      const q = new SqliteQueue({ db, owner: `dev-${k}` }, ROOMY);
      const rows = q.after(0, 100);
      assert.deepEqual(
        rows.map((r) => JSON.parse(r.body) as unknown),
        Array.from({ length: 10 - k }, (_, i) => ({ k, n: k + i + 1 })),
        `dev-${k}: rows ${k + 1}-10`,
      );
      assert.ok(rows.every((r) => r.topic === `devices/dev-${k}/telemetry`));
      assert.equal(q.depth, 10 - k);
      const c = q.counters();
      assert.deepEqual([c.queued, c.acked, c.sent], [10, k, k + 1], `dev-${k}: counters`);
    }
  });

  it('migrates a single-agent queue.db of the old schema in place: rows, counters and ids kept', async (t) => {
    const file = tempFile(t, 'queue.db');
    // The schema and writes of the agent before shared queues (queue.ts before decision 0027).
    const old = new Database(file);
    old.pragma('journal_mode = WAL');
    old.exec(`
      CREATE TABLE IF NOT EXISTS queue (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, body TEXT NOT NULL,
        boot TEXT NOT NULL, mono INTEGER NOT NULL, bytes INTEGER NOT NULL, enqueued_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);`);
    const insert = old.prepare('INSERT INTO queue (topic, body, boot, mono, bytes, enqueued_at) VALUES (?, ?, ?, ?, ?, ?)');
    for (let n = 1; n <= 5; n += 1) insert.run('devices/old/telemetry', JSON.stringify({ n }), 'b0', n, 30, Date.now());
    old.prepare('DELETE FROM queue WHERE id IN (1, 2)').run();
    for (const [name, value] of [
      ['queued', 5],
      ['acked', 2],
      ['sent', 4],
      ['dropped_age', 7],
    ] as const)
      old.prepare('INSERT INTO counters (name, value) VALUES (?, ?)').run(name, value);
    old.close();

    const q = new SqliteQueue(file, ROOMY);
    assert.deepEqual(
      q.after(0, 10).map((r) => [r.rowId, (JSON.parse(r.body) as { n: number }).n]),
      [
        [3, 3],
        [4, 4],
        [5, 5],
      ],
    );
    assert.deepEqual([q.depth, q.bytes], [3, 90]);
    assert.deepEqual(q.counters(), { queued: 5, sent: 4, acked: 2, dropped_count: 0, dropped_bytes: 0, dropped_age: 7 });
    await q.add(item('old', 6));
    q.ack([3]);
    q.markSent(1);
    q.close();

    const check = new Database(file, { readonly: true });
    t.after(() => check.close());
    assert.equal(check.pragma('user_version', { simple: true }), QUEUE_SCHEMA_VERSION);
    assert.ok(check.prepare("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'queue_owner'").get(), 'the (owner, id) index exists');
    assert.deepEqual(check.prepare('SELECT DISTINCT owner FROM queue').pluck().all(), ['']);
    const again = new SqliteQueue(file, ROOMY);
    t.after(() => again.close());
    assert.deepEqual(ns(again), [4, 5, 6], 'ids go on after the old ones (AUTOINCREMENT kept)');
    assert.ok((again.after(0, 10).at(-1)?.rowId ?? 0) > 5);
    assert.deepEqual(again.counters(), { queued: 6, sent: 5, acked: 3, dropped_count: 0, dropped_bytes: 0, dropped_age: 7 });
  });

  it('refuses a file written by a newer agent', (t) => {
    const file = tempFile(t);
    const newer = new Database(file);
    newer.pragma(`user_version = ${QUEUE_SCHEMA_VERSION + 1}`);
    newer.close();
    assert.throws(() => new SqliteQueue(file, ROOMY), /written by a newer agent/);
  });
});
