import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type TestContext, it } from 'node:test';
import { PlatformError } from '@bulwark/core';
import { assertDeploymentServed, embeddedDeployment } from '../../testing/embedded-deployment.js';
import { startTestServer, tempDir } from '../../testing/harness.js';
import { freshPgSchema, pgTestUrl, withPgConnection } from '../../testing/pg.js';
import { describeWith, engineFor, startNats } from '../../testing/services.js';
import { IMAGE_CHUNK_BYTES } from '../../ota/index.js';
import { type CopyProgress, copyStore } from './index.js';

/**
 * From one node to a cluster: an embedded deployment, stopped, copied into an empty
 * PostgreSQL schema; a cluster node started on that schema (on its own NATS) with the same
 * master key and an empty data directory, so that every image comes from PostgreSQL, serves
 * all of it. Sizes: BULWARK_TEST_COPY_DEVICES, BULWARK_TEST_COPY_READINGS.
 */

const sizes = { devices: Number(process.env.BULWARK_TEST_COPY_DEVICES ?? 2), readingsPerDevice: Number(process.env.BULWARK_TEST_COPY_READINGS ?? 5) };

async function pgTarget(t: TestContext) {
  const url = pgTestUrl(t);
  if (url === undefined) return undefined;
  // node:test runs after-hooks in the order they were added: whatever runs on the schema stops before it is dropped.
  const users: (() => Promise<void>)[] = [];
  const pgSchema = await freshPgSchema(t, url, async () => {
    for (const stop of users) await stop();
  });
  const count = (table: string) =>
    withPgConnection(url, async (c) => {
      await c.query(`SET search_path = ${pgSchema}`);
      const exists = await c.query('SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2', [pgSchema, table]);
      return exists.rowCount === 0 ? 0 : Number((await c.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n);
    });
  return { url, pgSchema, count, stopBeforeDrop: (stop: () => Promise<void>) => users.push(stop) };
}

const rejectsWith = (code: string, pattern: RegExp) => (err: unknown) => {
  assert.ok(err instanceof PlatformError, String(err));
  assert.equal(err.code, code, err.message);
  assert.match(err.message, pattern);
  return true;
};

describeWith('store copy: embedded to cluster', ['nats-server'], () => {
  it('copies an embedded deployment into PostgreSQL, verified, and a node on it serves every part of it', { timeout: 120_000 }, async (t) => {
    const target = await pgTarget(t);
    if (!target) return;
    const d = await embeddedDeployment(t, { ...sizes, imageBytes: IMAGE_CHUNK_BYTES * 2 + 777 });
    const events: CopyProgress[] = [];
    const report = await copyStore({
      from: d.dataDir,
      to: target.url,
      pgSchema: target.pgSchema,
      batchRows: 3,
      masterKey: { text: d.masterKey, origin: 'the test key' },
      onProgress: (p) => events.push(p),
    });
    const rowsOf = (name: string) => report.tables.find((x) => x.name === name)?.rows;
    assert.equal(rowsOf('devices'), sizes.devices);
    assert.equal(rowsOf('telemetry'), sizes.devices * sizes.readingsPerDevice);
    assert.equal(rowsOf('dead_letters'), sizes.devices);
    assert.ok((rowsOf('device_certificates') ?? 0) >= sizes.devices);
    assert.ok((rowsOf('secrets') ?? 0) >= 1);
    assert.equal(report.audit.entriesChecked, rowsOf('audit_log'));
    assert.ok(report.audit.entriesChecked >= d.auditEntries);
    assert.deepEqual(
      report.images.map((i) => [i.id, i.chunks]),
      [[d.artifactId, 3]],
    );
    assert.ok(report.secretsOpened >= 1);
    for (const t2 of report.tables) assert.equal(await target.count(t2.name), t2.rows, `rows of ${t2.name}`);
    assert.equal(await target.count('firmware_image_chunks'), 3);
    assert.equal(events[0]?.kind, 'plan');
    assert.ok(
      events.some((e) => e.kind === 'rows' && e.table === 'telemetry' && e.copied === e.of),
      'progress per table',
    );
    assert.ok(events.filter((e) => e.kind === 'rows' && e.table === 'telemetry').length > 2, 'telemetry went in several batches');
    assert.deepEqual(
      events.filter((e) => e.kind === 'verify').map((e) => e.kind === 'verify' && e.step),
      ['rows', 'audit', 'images'],
    );

    await assert.rejects(
      copyStore({ from: d.dataDir, to: target.url, pgSchema: target.pgSchema, masterKey: { text: d.masterKey, origin: 'the test key' } }),
      rejectsWith('BULWARK_ERR_CONFLICT', /the target is not empty \(.*devices.*\)/),
      'a second copy into the same schema',
    );

    const nats = await engineFor(t, startNats);
    const node = await startTestServer(t, {
      dataDir: tempDir(t),
      adminKey: d.adminKey,
      pgSchema: target.pgSchema,
      config: { ...d.config, store: target.url, bus: nats.url, nodeId: 'node-a' },
      env: { BULWARK_MASTER_KEY: d.masterKey },
      keepRunning: true,
    });
    target.stopBeforeDrop(() => node.server.stop());
    assert.equal(node.server.store.engine, 'postgres');
    await assertDeploymentServed(node, d);
  });
});

it('refuses a source a node runs on, a master key that cannot open it, a bad URL and a bad image; nothing reaches the target', { timeout: 120_000 }, async (t) => {
  const target = await pgTarget(t);
  if (!target) return;
  const d = await embeddedDeployment(t, { devices: 1, readingsPerDevice: 2, imageBytes: 1000 });
  const key = { text: d.masterKey, origin: 'the test key' };
  const options = { from: d.dataDir, to: target.url, pgSchema: target.pgSchema, masterKey: key };

  const running = await startTestServer(t, { dataDir: d.dataDir, adminKey: d.adminKey, config: d.config, keepRunning: true });
  await assert.rejects(copyStore(options), rejectsWith('BULWARK_ERR_CONFLICT', /bulwark\.db is in use: stop the Bulwark node/));
  await running.server.stop();

  await assert.rejects(copyStore({ ...options, masterKey: { text: randomBytes(32).toString('hex'), origin: 'BULWARK_MASTER_KEY' } }), rejectsWith('BULWARK_ERR_MASTER_KEY_INVALID', /BULWARK_MASTER_KEY cannot open this store/));
  await assert.rejects(copyStore({ ...options, masterKey: { text: 'short', origin: 'BULWARK_MASTER_KEY' } }), rejectsWith('BULWARK_ERR_MASTER_KEY_INVALID', /32 bytes/));
  await assert.rejects(copyStore({ ...options, to: 'mysql://db/bulwark' }), rejectsWith('BULWARK_ERR_CONFIG_INVALID', /not a PostgreSQL URL/));
  await assert.rejects(copyStore({ ...options, to: 'postgres://h:99999/x' }), rejectsWith('BULWARK_ERR_CONFIG_INVALID', /not a valid URL/));
  await assert.rejects(copyStore({ ...options, from: join(d.dataDir, 'nothing') }), rejectsWith('BULWARK_ERR_NOT_FOUND', /no Bulwark data directory/));
  assert.equal(await target.count('devices'), 0, 'no refusal so far touched the target');

  // An image file that is not its artifact's (same size, one byte changed): the whole copy rolls back.
  const file = join(d.dataDir, 'firmware', `${d.artifactId}.bin`);
  const good = readFileSync(file);
  const bad = Buffer.from(good);
  bad[10] = bad[10]! ^ 1;
  writeFileSync(file, bad);
  await assert.rejects(copyStore(options), rejectsWith('BULWARK_ERR_FIRMWARE_UNAVAILABLE', /does not match firmware/));
  for (const table of ['devices', 'telemetry', 'audit_log', 'secrets', 'firmware_image_chunks']) assert.equal(await target.count(table), 0, `${table} after the rollback`);
  writeFileSync(file, good);

  // Mended, the same target takes the copy: a failed run leaves nothing to clean up.
  const report = await copyStore(options);
  assert.equal(report.rows > 0, true);
  assert.equal(await target.count('telemetry'), 2);
});
