import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { ManualClock } from '@bulwark/core';
import type { TelemetryRecord } from '../../ingest/index.js';
import { describeApiKeyRepository } from '../contract/api-key-repository.contract.js';
import { appendEvent, describeAuditRepository, verifyRepository } from '../contract/audit-repository.contract.js';
import { T0, describePrincipalRepository, principal } from '../contract/principal-repository.contract.js';
import { describeSecretRepository } from '../contract/secret-repository.contract.js';
import { describeFleetCounts } from '../contract/fleet-counts.contract.js';
import { describeGroupRepository } from '../contract/group-repository.contract.js';
import { describeJobRepository } from '../contract/job-repository.contract.js';
import { describeTelemetryRepository } from '../contract/telemetry-repository.contract.js';
import { describeCommandRepository, describeDeviceConnectivity, describeHealthRepositories, describeTwinRepository } from '../contract/device-state.contract.js';
import { describeSqlClient } from '../contract/sql-client.contract.js';
import { type Store, openStore } from '../store.js';
import { SqliteClient } from './sqlite-client.js';

interface Closable {
  close(): Promise<void>;
}

/** A database path in a temporary directory, removed after everything tracked is closed. */
function tempDb(t: TestContext): { path: string; track<T extends Closable>(x: T): T } {
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-sqlite-'));
  const opened: Closable[] = [];
  t.after(async () => {
    try {
      for (const x of opened) await x.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  return { path: join(dir, 'bulwark.db'), track: (x) => (opened.push(x), x) };
}

async function sqliteClient(t: TestContext): Promise<SqliteClient> {
  const db = tempDb(t);
  return db.track(await SqliteClient.open(db.path));
}

async function sqliteStore(t: TestContext): Promise<Store> {
  const db = tempDb(t);
  return db.track(await openStore({ engine: 'sqlite', location: db.path }, new ManualClock()));
}

describe('SQLite store (real file)', () => {
  describeSqlClient(sqliteClient);
  describePrincipalRepository(sqliteStore);
  describeApiKeyRepository(sqliteStore);
  describeAuditRepository(sqliteStore);
  describeSecretRepository(sqliteStore);
  describeTelemetryRepository(sqliteStore);
  describeTwinRepository(sqliteStore);
  describeFleetCounts(sqliteStore);
  describeGroupRepository(sqliteStore);
  describeJobRepository(sqliteStore);
  describeDeviceConnectivity(sqliteStore);
  describeCommandRepository(sqliteStore);
  describeHealthRepositories(sqliteStore);

  it('keeps its data when the file is closed and opened again', async (t) => {
    const db = tempDb(t);
    const first = db.track(await openStore({ engine: 'sqlite', location: db.path }, new ManualClock()));
    await first.principals.insert(principal('usr_1', { name: 'alice' }));
    for (let i = 0; i < 3; i += 1) await appendEvent(first.audit, T0 + i);
    await first.close();

    const second = db.track(await openStore({ engine: 'sqlite', location: db.path }, new ManualClock()));
    assert.deepEqual(await second.principals.getByName('alice'), principal('usr_1', { name: 'alice' }));
    assert.equal((await appendEvent(second.audit, T0 + 3)).seq, 4);
    const report = await verifyRepository(second.audit);
    assert.equal(report.ok, true, report.message);
    assert.equal(report.entriesChecked, 4);
  });

  it('folds every stored reading into its rollups exactly once, whichever connection folds it, and before it stops', async (t) => {
    const db = tempDb(t);
    const reading = (msgId: string, v: number): TelemetryRecord => ({ deviceId: 'd1', msgId, schemaId: 's@1', seq: null, boot: null, deviceTs: T0, receivedAt: T0, ts: T0, skewMs: 0, data: { v } });
    const counted = async (s: Store) => (await s.telemetry.rollups({ deviceId: 'd1', field: 'v', bucketMs: 60_000, limit: 10 })).reduce((n, r) => n + r.count, 0);
    const first = db.track(await openStore({ engine: 'sqlite', location: db.path }, new ManualClock()));
    await first.telemetry.insertBatch([reading('a', 1), reading('b', 2)]);
    // Another connection folds what the first stored and did not fold yet (as a node started after a crash would)...
    const second = db.track(await openStore({ engine: 'sqlite', location: db.path }, new ManualClock()));
    assert.equal(await counted(second), 2);
    // ...and the first one's fold finds only what came after.
    await first.telemetry.insertBatch([reading('c', 3)]);
    assert.equal(await counted(first), 3);
    assert.equal(await counted(second), 3);
    // A clean stop folds what is pending: the rows are there for a reader that does not fold (the store copy, a SQL client).
    await first.telemetry.insertBatch([reading('d', 4)]);
    await first.close();
    await second.close();
    const raw = new Database(db.path, { readonly: true });
    try {
      assert.deepEqual(raw.prepare('SELECT SUM(count) AS n, SUM(sum) AS s FROM telemetry_rollups WHERE bucket_ms = 60000').get(), { n: 4, s: 10 });
    } finally {
      raw.close();
    }
  });

  it('reports a file it cannot open as an unavailable store', async (t) => {
    const { path } = tempDb(t);
    await assert.rejects(openStore({ engine: 'sqlite', location: join(path, 'no', 'such', 'dir.db') }, new ManualClock()), (err: Error & { code?: string }) => err.code === 'BULWARK_ERR_STORE_UNAVAILABLE');
  });
});
