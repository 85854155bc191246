import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, it } from 'node:test';
import { ManualClock } from '@bulwark/core';
import { describePg, freshPgSchema } from '../../testing/pg.js';
import { type FeedUnderTest, describeTelemetryFeed, reading } from '../contract/telemetry-feed.contract.js';
import { migrate } from '../migrate.js';
import { PostgresClient } from '../postgres/postgres-client.js';
import type { SqlClient } from '../sql-client.js';
import { SqliteClient } from '../sqlite/sqlite-client.js';
import { SqlTelemetryFeed } from './telemetry-feed.js';
import { SqlTelemetryRepository } from './telemetry.js';

async function onClient(db: SqlClient, gapMs?: number): Promise<FeedUnderTest & { db: SqlClient }> {
  await migrate(db, new ManualClock());
  const telemetry = new SqlTelemetryRepository(db);
  return {
    db,
    feed: new SqlTelemetryFeed(db, gapMs === undefined ? {} : { gapMs }),
    append: async (records) => {
      await telemetry.insertBatch(records);
    },
    removeBefore: async (schemaId, cutoff) => {
      await telemetry.deleteBefore(schemaId, cutoff);
    },
  };
}

async function sqlite(t: TestContext): Promise<FeedUnderTest & { db: SqlClient }> {
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-feed-'));
  const db = await SqliteClient.open(join(dir, 'bulwark.db'));
  t.after(async () => {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return onClient(db);
}

describeTelemetryFeed(sqlite, { prunedByRetention: true });

it('SQLite: a position is never reused after the newest readings are deleted', async (t) => {
  const { feed, append, removeBefore } = await sqlite(t);
  await append([reading('a', 1, 'env@1', 100), reading('a', 2, 'env@1', 200)]);
  const reader = await feed.head();
  await removeBefore!('env@1', 1_000);
  await append([reading('a', 3, 'env@1', 300)]);
  const page = await feed.read(reader, {}, 10);
  assert.deepEqual(
    page.entries.map((e) => e.record.msgId),
    ['m3'],
    'the new reading comes after the reader, not under its cursor',
  );
});

it('a duplicate reading adds no feed entry', async (t) => {
  const { feed, append } = await sqlite(t);
  await append([reading('a', 1)]);
  await append([reading('a', 1), reading('a', 2)]);
  const page = await feed.read('0', {}, 10);
  assert.deepEqual(
    page.entries.map((e) => e.record.msgId),
    ['m1', 'm2'],
  );
});

it('refuses a position that is not one of this feed', async (t) => {
  const { feed } = await sqlite(t);
  await assert.rejects(feed.read('stream:7', {}, 10), { code: 'BULWARK_ERR_BAD_REQUEST' });
});

describePg('PostgreSQL telemetry feed', (url) => {
  const pg = async (t: TestContext, gapMs?: number) => {
    const db = new PostgresClient({ url, schema: await freshPgSchema(t, url) });
    t.after(() => db.close());
    return onClient(db, gapMs);
  };
  // Holes are waited for 30 s by default; the contract's deletions are of readings stored just now.
  describeTelemetryFeed((t) => pg(t, 0), { prunedByRetention: true });

  it('waits at a hole a write under way may still fill, and passes it once it is old', async (t) => {
    const { db, feed, append } = await pg(t, 60_000);
    await append([reading('a', 1)]);
    // A transaction that took the next number and has not committed, as a concurrent group commit would.
    await db.run("SELECT nextval(pg_get_serial_sequence('telemetry_feed', 'seq'))");
    await append([reading('a', 2)]);
    const page = await feed.read('0', {}, 10);
    assert.deepEqual(
      page.entries.map((e) => e.record.msgId),
      ['m1'],
      'stops before the hole',
    );
    await db.run('UPDATE telemetry_feed SET stored_at = stored_at - 120000');
    const later = await feed.read(page.next, {}, 10);
    assert.deepEqual(
      later.entries.map((e) => e.record.msgId),
      ['m2'],
    );
    assert.equal(later.skipped, 1);
  });
});
