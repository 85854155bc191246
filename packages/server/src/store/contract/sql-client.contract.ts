import assert from 'node:assert/strict';
import { type TestContext, describe, it } from 'node:test';
import { ManualClock, isPlatformError } from '@bulwark/core';
import { migrate } from '../migrate.js';
import { MIGRATIONS } from '../migrations.js';
import type { SqlClient } from '../sql-client.js';

/** Returns a fresh, empty (not migrated) client and registers its own cleanup on `t`. */
export type MakeSqlClient = (t: TestContext) => Promise<SqlClient>;

interface Item {
  id: string;
  n: number | null;
  note: string | null;
}

const ITEMS = 'CREATE TABLE items (id TEXT PRIMARY KEY, n BIGINT, note TEXT)';
const INSERT = 'INSERT INTO items (id, n, note) VALUES ($1, $2, $3)';

async function withItems(make: MakeSqlClient, t: TestContext): Promise<SqlClient> {
  const db = await make(t);
  await db.run(ITEMS);
  return db;
}

/**
 * Awaits every promise, then throws if any rejected. Unlike Promise.all it leaves no work
 * running into the test's clean-up (on PostgreSQL, a schema dropped under a live transaction).
 */
export async function settleAll<T>(work: readonly Promise<T>[]): Promise<T[]> {
  const results = await Promise.allSettled(work);
  const failed = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  if (failed.length > 0) {
    const first = failed[0] instanceof Error ? failed[0].message : String(failed[0]);
    throw new AggregateError(failed, `${failed.length} of ${results.length} failed; the first: ${first}`);
  }
  return results.map((r) => (r.status === 'fulfilled' ? r.value : (undefined as never)));
}

async function ids(db: SqlClient): Promise<string[]> {
  return (await db.all<{ id: string }>('SELECT id FROM items ORDER BY id')).map((r) => r.id);
}

/** The SqlClient port: what every repository relies on, whatever the engine. */
export function describeSqlClient(make: MakeSqlClient): void {
  describe('SqlClient contract', () => {
    it('ping resolves', async (t) => {
      const db = await make(t);
      await db.ping();
    });

    it('binds a $n placeholder used twice, and placeholders out of order', async (t) => {
      const db = await withItems(make, t);
      assert.equal(await db.run('INSERT INTO items (id, n, note) VALUES ($2, $1, $2)', [7, 'a']), 1);
      assert.equal(await db.run(INSERT, ['b', 8, 'a']), 1);
      assert.deepEqual(await db.get<Item>('SELECT id, n, note FROM items WHERE id = $1', ['a']), { id: 'a', n: 7, note: 'a' });
      const rows = await db.all<{ id: string }>('SELECT id FROM items WHERE id = $1 OR note = $1 ORDER BY id', ['a']);
      assert.deepEqual(
        rows.map((r) => r.id),
        ['a', 'b'],
      );
      const both = await db.all<{ id: string }>('SELECT id FROM items WHERE n = $2 OR (id = $1 AND n = $2 - 1) ORDER BY id', ['a', 8]);
      assert.deepEqual(
        both.map((r) => r.id),
        ['a', 'b'],
      );
    });

    it('runMany runs one statement per parameter list, in order, and belongs to the transaction it runs in', async (t) => {
      const db = await withItems(make, t);
      const upsert = 'INSERT INTO items (id, n, note) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING';
      assert.deepEqual(
        await db.runMany(upsert, [
          ['a', 1, null],
          ['b', 2, null],
          ['a', 3, null],
        ]),
        [1, 1, 0],
      );
      await assert.rejects(
        db.transaction(async (tx) => {
          await tx.runMany(upsert, [
            ['c', 1, null],
            ['d', 2, null],
          ]);
          throw new Error('roll back');
        }),
      );
      assert.deepEqual(await ids(db), ['a', 'b']);
      assert.deepEqual(await db.runMany(upsert, []), []);
    });

    it('batch commits fixed statements together, or rolls all back at a run that changes an unexpected number of rows', async (t) => {
      const db = await withItems(make, t);
      const insert = 'INSERT INTO items (id, n, note) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING';
      const bump = 'UPDATE items SET n = n + $2 WHERE id = $1';
      const ok = await db.batch([
        {
          sql: insert,
          paramsList: [
            ['a', 1, null],
            ['b', 1, null],
          ],
          expectChanged: 1,
        },
        {
          sql: bump,
          paramsList: [
            ['a', 10],
            ['z', 1],
          ],
        },
      ]);
      assert.deepEqual(ok, {
        committed: true,
        changed: [
          [1, 1],
          [1, 0],
        ],
      });
      // 'b' exists: the insert of 'c' and the bump are rolled back with it, and every conflict of the statement is reported.
      const broken = await db.batch([
        {
          sql: insert,
          paramsList: [
            ['c', 1, null],
            ['b', 1, null],
            ['a', 1, null],
          ],
          expectChanged: 1,
        },
        { sql: bump, paramsList: [['a', 100]] },
      ]);
      assert.deepEqual(broken, { committed: false, statement: 0, changed: [1, 0, 0] });
      assert.deepEqual(await db.all<Item>('SELECT id, n, note FROM items ORDER BY id'), [
        { id: 'a', n: 11, note: null },
        { id: 'b', n: 1, note: null },
      ]);
      // An engine error rolls back too, and is thrown.
      await assert.rejects(
        db.batch([
          { sql: insert, paramsList: [['d', 1, null]] },
          { sql: 'INSERT INTO missing_table VALUES ($1)', paramsList: [['x']] },
        ]),
      );
      assert.deepEqual(await ids(db), ['a', 'b']);
      // Batches posted together run in call order, and a transaction waits for them.
      const writes: Promise<unknown>[] = [db.batch([{ sql: insert, paramsList: [['e', 1, null]] }]), db.run(bump, ['e', 1]), db.transaction((tx) => tx.run(bump, ['e', 1])), db.batch([{ sql: bump, paramsList: [['e', 1]] }])];
      await settleAll(writes);
      assert.deepEqual(await db.get<Item>('SELECT id, n, note FROM items WHERE id = $1', ['e']), { id: 'e', n: 4, note: null });
    });

    it('run resolves with the number of rows changed; get and all with no rows', async (t) => {
      const db = await withItems(make, t);
      for (const id of ['a', 'b', 'c']) await db.run(INSERT, [id, 1, null]);
      assert.equal(await db.run('UPDATE items SET n = 2 WHERE id <> $1', ['a']), 2);
      assert.equal(await db.run('UPDATE items SET n = 3 WHERE id = $1', ['missing']), 0);
      assert.equal(await db.run('DELETE FROM items WHERE n = $1', [2]), 2);
      assert.equal(await db.get('SELECT * FROM items WHERE id = $1', ['missing']), undefined);
      assert.deepEqual(await db.all('SELECT * FROM items WHERE id = $1', ['missing']), []);
    });

    it('returns integers as JS numbers, whether stored, counted or summed', async (t) => {
      const db = await withItems(make, t);
      const ms = Date.UTC(2026, 0, 1);
      await db.run(INSERT, ['a', ms, null]);
      await db.run(INSERT, ['b', BigInt(Number.MAX_SAFE_INTEGER) - BigInt(ms), null]);
      const row = await db.get<{ n: unknown }>('SELECT n FROM items WHERE id = $1', ['a']);
      assert.equal(typeof row?.n, 'number');
      assert.equal(row?.n, ms);
      const agg = await db.get<{ c: unknown; s: unknown; m: unknown }>('SELECT COUNT(*) AS c, SUM(n) AS s, MAX(n) AS m FROM items');
      assert.deepEqual(agg, { c: 2, s: Number.MAX_SAFE_INTEGER, m: Number.MAX_SAFE_INTEGER - ms });
    });

    it('round-trips null, and tells null apart from 0 and the empty string', async (t) => {
      const db = await withItems(make, t);
      await db.run(INSERT, ['null', null, null]);
      await db.run(INSERT, ['zero', 0, '']);
      assert.deepEqual(await db.get<Item>('SELECT id, n, note FROM items WHERE id = $1', ['null']), { id: 'null', n: null, note: null });
      assert.deepEqual(await db.get<Item>('SELECT id, n, note FROM items WHERE id = $1', ['zero']), { id: 'zero', n: 0, note: '' });
      assert.deepEqual(await db.all<{ id: string }>('SELECT id FROM items WHERE n IS NULL'), [{ id: 'null' }]);
    });

    it('commits a transaction that resolves and returns its value', async (t) => {
      const db = await withItems(make, t);
      const value = await db.transaction(async (tx) => {
        await tx.run(INSERT, ['a', 1, null]);
        await tx.run(INSERT, ['b', 2, null]);
        return (await tx.get<{ c: number }>('SELECT COUNT(*) AS c FROM items'))?.c;
      });
      assert.equal(value, 2);
      assert.deepEqual(await ids(db), ['a', 'b']);
    });

    it('rolls back a transaction that throws and rethrows the same error', async (t) => {
      const db = await withItems(make, t);
      await db.run(INSERT, ['kept', 1, null]);
      const boom = new Error('boom');
      await assert.rejects(
        db.transaction(async (tx) => {
          await tx.run(INSERT, ['a', 1, null]);
          await tx.run('UPDATE items SET n = 99 WHERE id = $1', ['kept']);
          throw boom;
        }),
        (err) => err === boom,
      );
      assert.deepEqual(await db.all<Item>('SELECT id, n, note FROM items'), [{ id: 'kept', n: 1, note: null }]);
    });

    it('rolls back a transaction whose statement fails', async (t) => {
      const db = await withItems(make, t);
      await db.run(INSERT, ['dup', 1, null]);
      await assert.rejects(
        db.transaction(async (tx) => {
          await tx.run(INSERT, ['a', 1, null]);
          await tx.run(INSERT, ['dup', 2, null]);
        }),
      );
      assert.deepEqual(await ids(db), ['dup']);
      // The client is usable afterwards.
      await db.transaction((tx) => tx.run(INSERT, ['b', 1, null]));
      assert.deepEqual(await ids(db), ['b', 'dup']);
    });

    it('fails a transaction whose statement failed unawaited: nothing of it commits', async (t) => {
      const db = await withItems(make, t);
      await db.run(INSERT, ['dup', 1, null]);
      let failed: Promise<number> | undefined;
      await assert.rejects(
        db.transaction(async (tx) => {
          await tx.run(INSERT, ['a', 1, null]);
          failed = tx.run(INSERT, ['dup', 2, null]);
          failed.catch(() => undefined);
          void tx.run(INSERT, ['b', 1, null]).catch(() => undefined);
          return 'returned before the failure was known';
        }),
        (err: unknown) => isPlatformError(err) && err.code === 'BULWARK_ERR_CONFLICT',
      );
      await assert.rejects(failed as Promise<number>);
      assert.deepEqual(await ids(db), ['dup']);
      await db.transaction((tx) => tx.run(INSERT, ['c', 1, null]));
      assert.deepEqual(await ids(db), ['c', 'dup']);
    });

    it('rolls back to a savepoint after a failed statement and commits the rest', async (t) => {
      const db = await withItems(make, t);
      await db.run(INSERT, ['dup', 1, null]);
      await db.transaction(async (tx) => {
        await tx.run(INSERT, ['a', 1, null]);
        await tx.run('SAVEPOINT s1');
        await tx.run(INSERT, ['undone', 1, null]);
        await assert.rejects(tx.run(INSERT, ['dup', 2, null]));
        await tx.run('ROLLBACK TO SAVEPOINT s1');
        await tx.run('RELEASE SAVEPOINT s1');
        await tx.run(INSERT, ['b', 1, null]);
      });
      assert.deepEqual(await ids(db), ['a', 'b', 'dup']);
    });

    it('does not let a concurrent caller slip its write into an open transaction', async (t) => {
      const db = await withItems(make, t);
      let outside: Promise<number> | undefined;
      await assert.rejects(
        db.transaction(async (tx) => {
          await tx.run(INSERT, ['inside', 1, null]);
          outside = db.run(INSERT, ['outside', 1, null]);
          await tx.get('SELECT COUNT(*) AS c FROM items');
          throw new Error('roll back');
        }),
        /roll back/,
      );
      assert.equal(await outside, 1);
      assert.deepEqual(await ids(db), ['outside']);
    });

    it('does not show a concurrent reader the rows of a transaction before it commits', async (t) => {
      const db = await withItems(make, t);
      let peek: Promise<{ id: string }[]> | undefined;
      await assert.rejects(
        db.transaction(async (tx) => {
          await tx.run(INSERT, ['uncommitted', 1, null]);
          peek = db.all<{ id: string }>('SELECT id FROM items');
          await tx.get('SELECT COUNT(*) AS c FROM items');
          throw new Error('roll back');
        }),
        /roll back/,
      );
      assert.deepEqual(await peek, []);
    });

    it('settles concurrent transactions independently', async (t) => {
      const db = await withItems(make, t);
      const all = Array.from({ length: 20 }, (_, i) =>
        db.transaction(async (tx) => {
          await tx.run(INSERT, [`k${String(i).padStart(2, '0')}`, i, null]);
          if (i % 2 === 0) throw new Error(`fail ${i}`);
          return i;
        }),
      );
      const results = await Promise.allSettled(all);
      assert.deepEqual(
        results.map((r) => r.status),
        results.map((_, i) => (i % 2 === 0 ? 'rejected' : 'fulfilled')),
      );
      assert.deepEqual(
        await ids(db),
        Array.from({ length: 10 }, (_, i) => `k${String(2 * i + 1).padStart(2, '0')}`),
      );
    });

    it('serialises concurrent read-modify-write transactions on one row', async (t) => {
      const db = await make(t);
      await db.run('CREATE TABLE counter (id INTEGER PRIMARY KEY, n BIGINT NOT NULL)');
      await db.run('INSERT INTO counter (id, n) VALUES (1, 0)');
      const seen = await settleAll(
        Array.from({ length: 30 }, () =>
          db.transaction(async (tx) => {
            const row = await tx.get<{ n: number }>('UPDATE counter SET n = n + 1 WHERE id = 1 RETURNING n');
            return row?.n;
          }),
        ),
      );
      assert.deepEqual(
        [...seen].sort((a, b) => (a ?? 0) - (b ?? 0)),
        Array.from({ length: 30 }, (_, i) => i + 1),
      );
      assert.deepEqual(await db.get('SELECT n FROM counter WHERE id = 1'), { n: 30 });
    });

    it('applies every migration once; a second run changes nothing', async (t) => {
      const db = await make(t);
      const clock = new ManualClock();
      assert.deepEqual(
        await migrate(db, clock),
        MIGRATIONS.map((m) => m.id),
      );
      clock.advance(1000);
      assert.deepEqual(await migrate(db, clock), []);
      const recorded = await db.all<{ id: number; applied_at: number }>('SELECT id, applied_at FROM schema_migrations ORDER BY id');
      assert.deepEqual(
        recorded,
        MIGRATIONS.map((m) => ({ id: m.id, applied_at: Date.UTC(2026, 0, 1) })),
      );
      assert.deepEqual(await db.all('SELECT id, seq FROM audit_head'), [{ id: 1, seq: 0 }]);
    });
  });
}
