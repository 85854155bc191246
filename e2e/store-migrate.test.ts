import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { assertDeploymentServed, embeddedDeployment } from '../packages/server/src/testing/embedded-deployment.js';
import { startTestServer } from '../packages/server/src/testing/harness.js';
import { freshPgSchema, pgTestUrl, withPgConnection } from '../packages/server/src/testing/pg.js';
import { parseJson, runCli, tempDir } from './support/cli.js';

/**
 * `bulwark store migrate`, `bulwark backup` and `bulwark restore` through the real command
 * line: exit codes, messages and reports as an operator sees them. What the copy and the
 * restore produce is checked in depth by packages/server/src/store/copy and src/backup.
 */

it('bulwark store migrate copies a stopped embedded node into an empty PostgreSQL schema, and refuses what it must', { timeout: 180_000 }, async (t) => {
  const url = pgTestUrl(t);
  if (url === undefined) return;
  const schema = await freshPgSchema(t, url);
  // A schema is chosen the way a node's --store URL chooses it: the connection's search_path.
  const to = `${url}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  const d = await embeddedDeployment(t, { devices: 2, readingsPerDevice: 3 });
  const env = { BULWARK_MASTER_KEY: d.masterKey };
  const count = (table: string) =>
    withPgConnection(url, async (c) => {
      const exists = await c.query('SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2', [schema, table]);
      return exists.rowCount === 0 ? 0 : Number((await c.query(`SELECT count(*) AS n FROM ${schema}.${table}`)).rows[0].n);
    });

  // The refusals, side by side (each is a process of its own).
  const [noKey, badUrl, wrongKey] = await Promise.all([
    runCli(t, ['store', 'migrate', '--from', d.dataDir, '--to', to]),
    runCli(t, ['store', 'migrate', '--from', d.dataDir, '--to', 'postgres://root@127.0.0.1:notaport/x'], { env }),
    runCli(t, ['store', 'migrate', '--from', d.dataDir, '--to', to], { env: { BULWARK_MASTER_KEY: randomBytes(32).toString('hex') } }),
  ]);
  assert.equal(noKey.code, 2, noKey.stderr);
  assert.match(noKey.stderr, /^error BULWARK_CLI_USAGE: give the master key the cluster's nodes will use/m);
  assert.equal(badUrl.code, 2, badUrl.stderr);
  assert.match(badUrl.stderr, /^error BULWARK_ERR_CONFIG_INVALID: --to: .* is not a valid URL/m);
  assert.equal(wrongKey.code, 1, wrongKey.stderr);
  assert.match(wrongKey.stderr, /^error BULWARK_ERR_MASTER_KEY_INVALID: BULWARK_MASTER_KEY cannot open this store, so the cluster's nodes could not either/m);
  assert.equal(await count('devices'), 0);

  const keyFile = join(tempDir(t), 'cluster.key');
  writeFileSync(keyFile, `${d.masterKey}\n`, { mode: 0o600 });
  const copied = await runCli(t, ['store', 'migrate', '--from', d.dataDir, '--to', to, '--master-key-file', keyFile, '--batch-rows', '2']);
  assert.equal(copied.code, 0, copied.stderr);
  assert.match(copied.stdout, /^Copied .*bulwark\.db into postgres:\/\/\*\*\*@127\.0\.0\.1:5432\/test\?options=.*: \d+ rows in \d+ tables, 1 firmware image\./m);
  assert.match(copied.stdout, /^Verified: every table's row count, the audit chain \(\d+ entries\), every image's SHA-256/m);
  // Not a terminal: plain progress lines on stderr, none on stdout.
  assert.match(copied.stderr, /^telemetry: 6\/6 rows$/m);
  assert.match(copied.stderr, /^verifying the audit chain…$/m);
  assert.equal(await count('telemetry'), 6);
  assert.equal(await count('firmware_image_chunks'), 2);

  const again = await runCli(t, ['store', 'migrate', '--from', d.dataDir, '--to', to, '--json'], { env });
  assert.equal(again.code, 1, again.stderr);
  assert.match(again.stderr, /^error BULWARK_ERR_CONFLICT: the target is not empty/m);
  assert.equal(again.stdout, '');
});

it('bulwark backup of a running node and bulwark restore into a new data directory: the node there serves everything', { timeout: 180_000 }, async (t) => {
  const d = await embeddedDeployment(t, { devices: 2, readingsPerDevice: 3 });
  const running = await startTestServer(t, { dataDir: d.dataDir, adminKey: d.adminKey, config: d.config, keepRunning: true });
  const dir = tempDir(t);
  const config = join(dir, 'node.json');
  writeFileSync(config, JSON.stringify({ ota: { rootKeysFile: d.kit.rootFile } }));
  const out = join(dir, 'backup');
  const backup = await runCli(t, ['backup', '--data', d.dataDir, '--config', config, '--out', out, '--with-master-key', '--json']);
  await running.server.stop();
  assert.equal(backup.code, 0, backup.stderr);
  const report = parseJson<{ manifest: { files: { part: string }[] }; masterKeyApart: string | null }>(backup);
  assert.deepEqual(report.manifest.files.map((f) => f.part).sort(), ['firmware', 'master-key', 'node-id', 'root-keys', 'store']);
  assert.equal(report.masterKeyApart, null);

  const withoutKey = await runCli(t, ['backup', '--data', d.dataDir, '--out', join(dir, 'second')]);
  assert.equal(withoutKey.code, 0, withoutKey.stderr);
  assert.match(withoutKey.stdout, /^The master key \(\w+\) is not in the backup: keep a copy of .*master\.key apart from it/m);

  const restored = join(dir, 'restored');
  const restore = await runCli(t, ['restore', '--from', out, '--data', restored]);
  assert.equal(restore.code, 0, restore.stderr);
  assert.match(restore.stdout, /^Restored 5 files \(1 firmware images\) into .*restored; master key \w+ opens the store; the audit chain verifies/m);
  assert.match(restore.stdout, /the node read it from .*firmware-root\.json: put it back there, or set ota\.rootKeysFile\./);
  const over = await runCli(t, ['restore', '--from', out, '--data', restored]);
  assert.equal(over.code, 1, over.stderr);
  assert.match(over.stderr, /^error BULWARK_ERR_CONFLICT: the data directory .* is not empty/m);

  // The node on the restored directory uses the master.key the restore wrote, and the root key set it put back.
  const node = await startTestServer(t, { dataDir: restored, adminKey: d.adminKey, config: { ota: { rootKeysFile: join(restored, 'firmware-root.json'), tickIntervalMs: 0 } } });
  await assertDeploymentServed(node, d);
});
