import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { type TestContext, after, before, it } from 'node:test';
import { nextMessage } from '../testing/device-messages.js';
import { type EnrolledDevice, connectDevice, enrollDevice } from '../testing/devices.js';
import { firmwareKit, sha256, uploadFirmware } from '../testing/firmware.js';
import { type TestServer, newAdminKey, startTestServer, tempDir } from '../testing/harness.js';
import { freshPgSchema, pgTestUrl, withPgConnection } from '../testing/pg.js';
import { type RunningEngine, describeWith, startNats } from '../testing/services.js';
import { IMAGE_CHUNK_BYTES } from '../ota/index.js';

/** GET over a node's device HTTPS listener with the device's certificate. */
function deviceGet(s: TestServer, d: EnrolledDevice, path: string, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: s.server.deviceHttpPort, path, headers, key: d.keyPem, cert: d.certPem, ca: d.caPem, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

const metric = async (s: TestServer, line: string) => Number(new RegExp(`^${line.replace(/[{}"]/g, '\\$&')} (\\d+)$`, 'm').exec((await s.api('GET', '/metrics')).text)?.[1] ?? 0);

/**
 * Firmware in cluster mode: an image uploaded through one node is stored in PostgreSQL, and a
 * device whose download reaches another node (the load balancer's pick) gets it from there,
 * whole or by Range, once that node has fetched and checked its own copy.
 */
describeWith('cluster mode: firmware images served by every node', ['nats-server'], () => {
  let nats: RunningEngine;
  before(async () => {
    nats = await startNats();
  });
  after(() => nats.stop());

  async function twoNodes(t: TestContext) {
    const url = pgTestUrl(t);
    if (url === undefined) return undefined;
    const pgSchema = await freshPgSchema(t, url);
    const kit = firmwareKit(tempDir(t));
    const adminKey = newAdminKey();
    const env = { BULWARK_MASTER_KEY: randomBytes(32).toString('hex') };
    // Every node is given the same root key set file (as the cluster guide says).
    const config = { store: url, bus: nats.url, ota: { rootKeysFile: kit.rootFile, tickIntervalMs: 0 } };
    const a = await startTestServer(t, { config: { ...config, nodeId: 'node-a' }, pgSchema, adminKey, env, keepRunning: true });
    const b = await startTestServer(t, { config: { ...config, nodeId: 'node-b' }, pgSchema, adminKey, env, keepRunning: true });
    t.after(async () => {
      await b.server.stop();
      await a.server.stop();
    });
    const sql = (text: string, values: unknown[] = []) =>
      withPgConnection(url, async (c) => {
        await c.query(`SET search_path = ${pgSchema}`);
        return (await c.query(text, values)).rows;
      });
    return { a, b, kit, sql, admin: await a.tokenFor(adminKey) };
  }

  it('serves an image uploaded through node A from node B, whole and by Range, and never serves a corrupt copy from the database', async (t) => {
    const nodes = await twoNodes(t);
    if (!nodes) return;
    const { a, b, kit, sql, admin } = nodes;
    const image = randomBytes(IMAGE_CHUNK_BYTES * 2 + 12_345);
    const fw = await uploadFirmware(a, admin, kit.release(image), image);
    assert.deepEqual([fw.status, fw.body.state], [200, 'published'], fw.text);
    const id = fw.body.id as string;
    assert.deepEqual(
      await sql('SELECT idx::int AS idx, length(data) AS n FROM firmware_image_chunks WHERE artifact_id = $1 ORDER BY idx', [id]),
      [
        { idx: 0, n: IMAGE_CHUNK_BYTES },
        { idx: 1, n: IMAGE_CHUNK_BYTES },
        { idx: 2, n: 12_345 },
      ],
      'the image is in PostgreSQL, in chunks',
    );

    // The device takes its job from node A and downloads from node B.
    const d = await enrollDevice(a, admin, 'gw-fw1', { model: 'gw-1', hardwareRevision: 'C', firmwareVersion: '1.0.0' });
    const c = await connectDevice(a, d);
    t.after(() => c.end(true));
    await c.subscribeAsync('devices/gw-fw1/ota/job', { qos: 1 });
    const jobArrives = nextMessage(c, 'devices/gw-fw1/ota/job');
    const rollout = await a.api('POST', '/api/v1/rollouts', { token: admin, body: { name: 'gw 2.0.0', artifactId: id, target: { deviceIds: ['gw-fw1'] }, strategy: { waves: [{ percent: 100 }] }, gates: { minDevices: 1, onFailure: 'pause' } } });
    assert.equal(rollout.status, 201, rollout.text);
    const job = await jobArrives;
    assert.equal(job.url, `/v1/firmware/${id}`);

    // A flipped byte in the database: node B refuses to serve it (503, counted), and keeps nothing of it.
    const [chunk] = (await sql('SELECT data FROM firmware_image_chunks WHERE artifact_id = $1 AND idx = 1', [id])) as { data: Buffer }[];
    const flipped = Buffer.from(chunk!.data);
    flipped[7] = flipped[7]! ^ 0x80;
    await sql('UPDATE firmware_image_chunks SET data = $1 WHERE artifact_id = $2 AND idx = 1', [flipped, id]);
    const refused = await deviceGet(b, d, job.url);
    assert.equal(refused.status, 503);
    assert.equal(JSON.parse(refused.body.toString()).error.code, 'BULWARK_ERR_FIRMWARE_UNAVAILABLE');
    assert.equal((await deviceGet(b, d, job.url, { range: 'bytes=0-99' })).status, 503, 'not by Range either');
    assert.equal(await metric(b, 'bulwark_firmware_cache_fetches_total{result="corrupt"}'), 2);
    assert.equal(await metric(b, 'bulwark_firmware_bytes_served_total'), 0, 'not one byte of it was sent');
    assert.equal(existsSync(join(b.dataDir, 'firmware', `${id}.bin`)), false);

    // Mended: B fetches it once, checks it, and serves it from its own copy.
    await sql('UPDATE firmware_image_chunks SET data = $1 WHERE artifact_id = $2 AND idx = 1', [chunk!.data, id]);
    const whole = await deviceGet(b, d, job.url);
    assert.equal(whole.status, 200);
    assert.equal(whole.headers.etag, `"${sha256(image)}"`);
    assert.equal(sha256(whole.body), sha256(image));
    assert.equal(sha256(whole.body), job.manifest.release.signed.sha256);
    assert.deepEqual(readFileSync(join(b.dataDir, 'firmware', `${id}.bin`)), image, 'B keeps its copy in its data directory');

    const from = IMAGE_CHUNK_BYTES - 100;
    const to = IMAGE_CHUNK_BYTES + 99;
    const part = await deviceGet(b, d, job.url, { range: `bytes=${from}-${to}` });
    assert.equal(part.status, 206);
    assert.equal(part.headers['content-range'], `bytes ${from}-${to}/${image.length}`);
    assert.deepEqual(part.body, image.subarray(from, to + 1), 'a range across a chunk boundary');
    const tail = await deviceGet(b, d, job.url, { range: 'bytes=-500' });
    assert.deepEqual([tail.status, tail.body], [206, image.subarray(image.length - 500)]);
    const past = await deviceGet(b, d, job.url, { range: `bytes=${image.length}-` });
    assert.equal(past.status, 416);
    assert.equal(past.headers['content-range'], `bytes */${image.length}`);
    assert.equal(await metric(b, 'bulwark_firmware_cache_fetches_total{result="fetched"}'), 1, 'one fetch served every later request');
    assert.equal(await metric(b, 'bulwark_firmware_bytes_served_total'), image.length + 200 + 500);

    // Node A serves from the copy it kept at upload, without fetching.
    assert.equal(sha256((await deviceGet(a, d, job.url)).body), sha256(image));
    assert.equal(await metric(a, 'bulwark_firmware_cache_fetches_total{result="fetched"}'), 0);
  });
});
