import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { IMAGE_CHUNK_BYTES } from '../ota/index.js';
import { nextMessage, send } from './device-messages.js';
import { type EnrolledDevice, connectDevice, enrollDevice } from './devices.js';
import { type FirmwareKit, firmwareKit, sha256, uploadFirmware } from './firmware.js';
import { type TestServer, newAdminKey, startTestServer, tempDir } from './harness.js';
import { schema } from './telemetry.js';

/**
 * Test-only: an embedded deployment with something in every part of its store (devices with
 * certificates, telemetry and a dead letter, a signed firmware image with a live update job,
 * audit entries), made through the API of a real server on a SQLite file and then stopped;
 * and the checks that another node (on PostgreSQL after a copy, or on a restored data
 * directory) serves all of it through its API and its device listeners.
 */

export interface DeploymentSize {
  readonly devices?: number;
  readonly readingsPerDevice?: number;
  readonly imageBytes?: number;
}

export interface EmbeddedDeployment {
  readonly dataDir: string;
  readonly adminKey: string;
  /** The content of `<data>/master.key`: what the other node is given as BULWARK_MASTER_KEY. */
  readonly masterKey: string;
  readonly kit: FirmwareKit;
  readonly devices: readonly EnrolledDevice[];
  readonly readingsPerDevice: number;
  readonly image: Buffer;
  readonly artifactId: string;
  /** The audit chain's length when the node stopped. */
  readonly auditEntries: number;
  /** The config the deployment ran with that another node needs too (the firmware root key set). */
  readonly config: Record<string, unknown>;
}

export async function embeddedDeployment(t: TestContext, size: DeploymentSize = {}): Promise<EmbeddedDeployment> {
  const devices = size.devices ?? 2;
  const readingsPerDevice = size.readingsPerDevice ?? 5;
  const image = randomBytes(size.imageBytes ?? IMAGE_CHUNK_BYTES + 4321);
  const dir = tempDir(t, 'bulwark-deployment-');
  const dataDir = join(dir, 'data');
  const kit = firmwareKit(dir);
  const config = { ota: { rootKeysFile: kit.rootFile, tickIntervalMs: 0 } };
  const adminKey = newAdminKey();
  const s = await startTestServer(t, { dataDir, adminKey, config, keepRunning: true });
  try {
    const admin = await s.tokenFor(adminKey);
    assert.equal((await s.api('POST', '/api/v1/schemas', { token: admin, body: schema })).status, 201);
    const enrolled: EnrolledDevice[] = [];
    for (let i = 0; i < devices; i += 1) {
      const d = await enrollDevice(s, admin, `gw-${i}`, { model: 'gw-1', hardwareRevision: 'C', firmwareVersion: '1.0.0', tags: ['migrated'] });
      enrolled.push(d);
      const client = await connectDevice(s, d);
      try {
        for (let n = 0; n < readingsPerDevice; n += 1) {
          await send(client, `devices/${d.id}/telemetry`, { id: `r-${n}`, seq: n + 1, ts: Date.now(), schema: 'env-sensor@1', data: { temp_c: 20 + n / 10 } });
        }
        // Out of range: a dead letter.
        await send(client, `devices/${d.id}/telemetry`, { id: 'bad-1', seq: readingsPerDevice + 1, ts: Date.now(), schema: 'env-sensor@1', data: { temp_c: 999 } });
      } finally {
        await client.endAsync();
      }
    }
    const fw = await uploadFirmware(s, admin, kit.release(image), image);
    assert.deepEqual([fw.status, fw.body?.state], [200, 'published'], fw.text);
    const artifactId = fw.body.id as string;
    // A live update job for the first device: the only way a device may download an image.
    const first = enrolled[0]!;
    const client = await connectDevice(s, first);
    try {
      await client.subscribeAsync(`devices/${first.id}/ota/job`, { qos: 1 });
      const job = nextMessage(client, `devices/${first.id}/ota/job`);
      const rollout = await s.api('POST', '/api/v1/rollouts', { token: admin, body: { name: 'gw 2.0.0', artifactId, target: { deviceIds: [first.id] }, strategy: { waves: [{ percent: 100 }] }, gates: { minDevices: 1, onFailure: 'pause' } } });
      assert.equal(rollout.status, 201, rollout.text);
      await job;
    } finally {
      await client.endAsync();
    }
    const verified = await s.api('POST', '/api/v1/audit/verify', { token: admin });
    assert.equal(verified.body?.ok, true, verified.text);
    return {
      dataDir,
      adminKey,
      masterKey: readFileSync(join(dataDir, 'master.key'), 'utf8').trim(),
      kit,
      devices: enrolled,
      readingsPerDevice,
      image,
      artifactId,
      auditEntries: verified.body.entriesChecked as number,
      config,
    };
  } finally {
    await s.server.stop();
  }
}

/** GET over a node's device HTTPS listener with a device's certificate. */
export function deviceGet(s: TestServer, d: EnrolledDevice, path: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: s.server.deviceHttpPort, path, key: d.keyPem, cert: d.certPem, ca: d.caPem, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Everything the deployment held, seen through `node`'s API and device listeners. */
export async function assertDeploymentServed(node: TestServer, d: EmbeddedDeployment): Promise<void> {
  const admin = await node.tokenFor(d.adminKey);
  const listed = await node.api('GET', '/api/v1/devices?limit=1000', { token: admin });
  assert.equal(listed.status, 200, listed.text);
  const items = (Array.isArray(listed.body) ? listed.body : listed.body.items) as { id: string }[];
  assert.deepEqual(items.map((x) => x.id).sort(), d.devices.map((x) => x.id).sort(), 'every device');
  for (const dev of d.devices) {
    const readings = await node.api('GET', `/api/v1/devices/${dev.id}/telemetry?limit=10000`, { token: admin });
    assert.equal(readings.status, 200, readings.text);
    assert.equal((readings.body as unknown[]).length, d.readingsPerDevice, `the readings of ${dev.id}`);
  }
  const letters = await node.api('GET', '/api/v1/dead-letters?limit=1000', { token: admin });
  assert.equal(letters.status, 200, letters.text);
  assert.equal(((Array.isArray(letters.body) ? letters.body : letters.body.items) as unknown[]).length, d.devices.length, 'the dead letters');
  const verified = await node.api('POST', '/api/v1/audit/verify', { token: admin });
  assert.equal(verified.body?.ok, true, verified.text);
  assert.ok(verified.body.entriesChecked >= d.auditEntries, `the audit chain holds the ${d.auditEntries} entries of the embedded node (${verified.text})`);

  // A device connects over mTLS with the certificate the embedded node issued, and sends a reading.
  const first = d.devices[0]!;
  const client = await connectDevice(node, first);
  try {
    await send(client, `devices/${first.id}/telemetry`, { id: 'after-copy', seq: 1000, ts: Date.now(), schema: 'env-sensor@1', data: { temp_c: 21 } });
  } finally {
    await client.endAsync();
  }
  // And downloads its firmware from the node's device HTTPS listener.
  const got = await deviceGet(node, first, `/v1/firmware/${d.artifactId}`);
  assert.equal(got.status, 200, got.body.toString());
  assert.equal(sha256(got.body), sha256(d.image), 'the image, byte for byte');
}
