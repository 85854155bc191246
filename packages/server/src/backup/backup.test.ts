import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { PlatformError } from '@bulwark/core';
import { assertDeploymentServed, embeddedDeployment } from '../testing/embedded-deployment.js';
import { startTestServer, tempDir } from '../testing/harness.js';
import { MANIFEST_FILE, backupEmbedded, restoreEmbedded } from './index.js';

/**
 * Backups of an embedded node, taken while it runs, restored into a new data directory: a
 * node started there serves every device, reading, audit entry and firmware image, and
 * devices connect with the certificates they had. Broken backups and missing keys are refused.
 */

const rejectsWith = (code: string, pattern: RegExp) => (err: unknown) => {
  assert.ok(err instanceof PlatformError, String(err));
  assert.equal(err.code, code, err.message);
  assert.match(err.message, pattern);
  return true;
};

it('backs up a running node without its master key, and restores it with the key given apart', { timeout: 120_000 }, async (t) => {
  const d = await embeddedDeployment(t, { devices: 2, readingsPerDevice: 3 });
  const running = await startTestServer(t, { dataDir: d.dataDir, adminKey: d.adminKey, config: d.config });
  const out = join(tempDir(t), 'backup');
  const report = await backupEmbedded({ dataDir: d.dataDir, rootKeysFile: d.kit.rootFile, out });
  assert.equal(report.masterKeyApart, join(d.dataDir, 'master.key'));
  assert.deepEqual(report.manifest.files.map((f) => f.part).sort(), ['firmware', 'node-id', 'root-keys', 'store'].sort());
  assert.ok(report.manifest.auditEntries >= d.auditEntries);
  assert.equal(existsSync(join(out, 'master.key')), false, 'the key is kept apart by default');
  assert.deepEqual(readFileSync(join(out, 'firmware', `${d.artifactId}.bin`)), d.image);
  for (const name of readdirSync(out)) assert.equal(statSync(join(out, name)).mode & 0o077, 0, `${name} is for its owner only`);
  // The node ran on through the backup.
  assert.equal((await running.api('GET', '/readyz')).status, 200);
  await running.server.stop();

  const restored = join(tempDir(t), 'restored');
  await assert.rejects(restoreEmbedded({ from: out, dataDir: restored }), rejectsWith('BULWARK_ERR_MASTER_KEY_INVALID', /the backup holds no master key/));
  await assert.rejects(
    restoreEmbedded({ from: out, dataDir: restored, masterKey: { text: randomBytes(32).toString('base64'), origin: 'BULWARK_MASTER_KEY', write: false } }),
    rejectsWith('BULWARK_ERR_MASTER_KEY_INVALID', /BULWARK_MASTER_KEY cannot open this store/),
  );
  assert.equal(existsSync(join(restored, 'bulwark.db')), false, 'a refused restore leaves no store behind');

  const done = await restoreEmbedded({ from: out, dataDir: restored, masterKey: { text: d.masterKey, origin: 'BULWARK_MASTER_KEY', write: false } });
  assert.equal(done.masterKey, 'BULWARK_MASTER_KEY');
  assert.equal(existsSync(join(restored, 'master.key')), false);
  assert.equal(done.images, 1);
  const node = await startTestServer(t, { dataDir: restored, adminKey: d.adminKey, config: { ota: { ...(d.config.ota as object), rootKeysFile: join(restored, 'firmware-root.json') } }, env: { BULWARK_MASTER_KEY: d.masterKey } });
  await assertDeploymentServed(node, d);
});

it('refuses a damaged backup, a backup into a non-empty directory, and a restore over an existing data directory', { timeout: 120_000 }, async (t) => {
  const d = await embeddedDeployment(t, { devices: 1, readingsPerDevice: 1, imageBytes: 2000 });
  const out = join(tempDir(t), 'backup');
  await backupEmbedded({ dataDir: d.dataDir, out, withMasterKey: true });
  assert.ok(existsSync(join(out, 'master.key')));
  await assert.rejects(backupEmbedded({ dataDir: d.dataDir, out }), rejectsWith('BULWARK_ERR_CONFLICT', /is not empty/));
  await assert.rejects(restoreEmbedded({ from: out, dataDir: d.dataDir }), rejectsWith('BULWARK_ERR_CONFLICT', /the data directory .* is not empty/));
  await assert.rejects(restoreEmbedded({ from: d.dataDir, dataDir: join(tempDir(t), 'x') }), rejectsWith('BULWARK_ERR_NOT_FOUND', new RegExp(`no ${MANIFEST_FILE}`)));

  const image = join(out, 'firmware', `${d.artifactId}.bin`);
  const bytes = readFileSync(image);
  bytes[0] = bytes[0]! ^ 1;
  writeFileSync(image, bytes);
  const target = join(tempDir(t), 'restored');
  await assert.rejects(restoreEmbedded({ from: out, dataDir: target }), rejectsWith('BULWARK_ERR_CONFLICT', /does not match the backup's manifest: the backup is damaged/));
  assert.equal(existsSync(join(target, 'bulwark.db')), false);
});
