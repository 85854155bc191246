import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { describe, it } from 'node:test';
import { type RootKeySet, delegateReleaseKeys, generateFirmwareKey, rootKeySet, rotateRoot, signFirmwareBody, signRelease } from '@bulwark/protocol';
import { nextMessage, send } from '../testing/device-messages.js';
import { type EnrolledDevice, connectDevice, enrollDevice } from '../testing/devices.js';
import { firmwareKit, sha256, uploadFirmware } from '../testing/firmware.js';
import { type TestServer, startTestServer, tempDir } from '../testing/harness.js';
import { eventually } from '../testing/eventually.js';

/** GET over the device HTTPS listener with the device's certificate; `cutAt` ends the connection once that many bytes arrived. */
function deviceGet(s: TestServer, d: EnrolledDevice, path: string, headers: Record<string, string> = {}, cutAt?: number) {
  return new Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: s.server.deviceHttpPort, path, headers, key: d.keyPem, cert: d.certPem, ca: d.caPem, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      let got = 0;
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        got += c.length;
        if (cutAt !== undefined && got >= cutAt) {
          req.destroy();
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
        }
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', () => undefined);
    });
    req.on('error', (err) => (cutAt === undefined ? reject(err) : undefined));
    req.end();
  });
}

const bytesServed = async (s: TestServer) => Number(/bulwark_firmware_bytes_served_total (\d+)/.exec((await s.api('GET', '/metrics')).text)?.[1] ?? -1);

async function otaServer(t: Parameters<typeof tempDir>[0]) {
  const kit = firmwareKit(tempDir(t));
  const s = await startTestServer(t, { config: { ota: { rootKeysFile: kit.rootFile, minSecurityVersion: 3, tickIntervalMs: 0 } } });
  return { kit, s, admin: await s.tokenFor(s.adminKey) };
}

describe('firmware upload', () => {
  it('refuses every attack with its own reason, and audits each refusal', async (t) => {
    const { kit, s, admin } = await otaServer(t);
    const image = randomBytes(20_000);
    const good = kit.release(image);
    const other = randomBytes(20_000);
    assert.equal((await uploadFirmware(s, admin, kit.release(other, { version: '1.9.0' }), other)).status, 200, 'an earlier release is published');

    const forged = delegateReleaseKeys({ version: 2, expires: Date.now() + 86_400_000, keys: [kit.releaseKey] }, [kit.roots[2]!.privateKeyPem]);
    const cases: [string, unknown, Buffer, string][] = [
      ['unsigned image', { ...good, release: { ...good.release, signatures: [] } }, image, 'unsigned'],
      ['wrong key', { ...good, release: { ...good.release, signatures: [signFirmwareBody(good.release.signed, generateFirmwareKey().privateKeyPem)] } }, image, 'untrusted_key'],
      ['metadata edited after signing', { ...good, release: { ...good.release, signed: { ...good.release.signed, size: 19_999 } } }, image, 'bad_signature'],
      ['valid signature over a tampered image', kit.release(image, { version: '2.0.1' }), Buffer.concat([image.subarray(0, 19_999), Buffer.from([image[19_999]! ^ 1])]), 'image_hash_mismatch'],
      ['older security version than the fleet minimum', kit.release(image, { version: '2.0.2', securityVersion: 2 }), image, 'rollback'],
      ['replayed expired metadata', kit.release(image, { version: '2.0.3', expires: Date.now() - 1000 }), image, 'expired'],
      ['metadata of one release with the image of another', kit.release(image, { version: '2.0.4' }), other, 'mix_and_match'],
      ['a body longer than declared', kit.release(image, { version: '2.0.5' }), Buffer.concat([image, randomBytes(5000)]), 'image_too_long'],
      ['one stolen root key below the threshold', { ...good, delegation: forged }, image, 'root_threshold_not_met'],
    ];
    for (const [name, manifest, body, reason] of cases) {
      const res = await uploadFirmware(s, admin, manifest, body);
      assert.equal(res.status, 400, `${name}: ${res.text}`);
      assert.equal(res.body.error.code, 'BULWARK_ERR_FIRMWARE_REFUSED', name);
      assert.equal(res.body.error.details.reason, reason, name);
    }
    const refusals = (await s.api('GET', '/api/v1/audit?result=error&limit=100', { token: admin })).body as { action: string; details: { reason?: string } }[];
    assert.deepEqual(
      refusals.map((e) => e.details.reason).reverse(),
      cases.map(([, , , reason]) => reason),
    );
    assert.ok(refusals.every((e) => e.action === 'firmware.upload' || e.action === 'firmware.publish'));
    const list = (await s.api('GET', '/api/v1/firmware', { token: admin })).body as { version: string; state: string }[];
    assert.deepEqual(
      list.filter((a) => a.state === 'published').map((a) => a.version),
      ['1.9.0'],
      'nothing refused was published',
    );
    assert.equal((await uploadFirmware(s, admin, good, image)).status, 200);
  });
});

describe('firmware upload after a refused image', () => {
  it('drops the registration of a refused image, keeps the refusal audited, and publishes the same upload run again with the right image', async (t) => {
    const { kit, s, admin } = await otaServer(t);
    const image = randomBytes(8192);
    const manifest = kit.release(image, { version: '3.0.0' });
    const tampered = Buffer.from(image);
    tampered[100] = tampered[100]! ^ 1;
    for (const [body, reason] of [
      [tampered, 'image_hash_mismatch'],
      [Buffer.concat([image, randomBytes(10)]), 'image_too_long'],
      [image.subarray(0, 4096), 'image_size_mismatch'],
    ] as const) {
      const res = await uploadFirmware(s, admin, manifest, body);
      assert.deepEqual([res.status, res.body.error.details.reason], [400, reason], 'the manifest registers again each time: the refused one was dropped');
    }
    const refusals = (await s.api('GET', '/api/v1/audit?result=error&limit=10', { token: admin })).body as { action: string; target: string; details: { reason: string } }[];
    assert.deepEqual(refusals.map((e) => [e.action, e.details.reason]).reverse(), [
      ['firmware.publish', 'image_hash_mismatch'],
      ['firmware.publish', 'image_too_long'],
      ['firmware.publish', 'image_size_mismatch'],
    ]);
    for (const e of refusals) assert.equal((await s.api('GET', `/api/v1/firmware/${e.target}`, { token: admin })).status, 404, `${e.target} is gone`);
    assert.deepEqual((await s.api('GET', '/api/v1/firmware', { token: admin })).body, [], 'nothing is left awaiting an image');

    const ok = await uploadFirmware(s, admin, manifest, image);
    assert.deepEqual([ok.status, ok.body.state, ok.body.version], [200, 'published', '3.0.0'], ok.text);
    assert.equal((await s.api('PUT', `/api/v1/firmware/${ok.body.id as string}/image`, { token: admin })).status, 409, 'a published release keeps its image');
    assert.deepEqual(
      (await s.api('GET', '/api/v1/firmware', { token: admin })).body.map((a: { id: string; state: string }) => [a.id, a.state]),
      [[ok.body.id, 'published']],
    );
  });
});

describe('firmware under a rotated root', () => {
  it('publishes a release whose manifest carries the rotation from the pinned root, and refuses (and audits) a rotation forged with one stolen root key', async (t) => {
    const { kit, s, admin } = await otaServer(t);
    const pinned = JSON.parse(readFileSync(kit.rootFile, 'utf8')) as RootKeySet;
    const fresh = [generateFirmwareKey(), generateFirmwareKey()];
    const image = randomBytes(4096);
    const body = { name: 'gw-fw', version: '2.0.0', securityVersion: 5, hardware: { model: 'gw-1', hardwareRevisions: ['C'] }, size: image.length, sha256: sha256(image), issuedAt: Date.now() - 1000, expires: Date.now() + 86_400_000 };
    const delegation = delegateReleaseKeys(
      { version: 2, expires: Date.now() + 86_400_000, keys: [kit.releaseKey] },
      fresh.map((k) => k.privateKeyPem),
    );
    const forged = rotateRoot(pinned, rootKeySet(2, fresh), [kit.roots[2]!.privateKeyPem, ...fresh.map((k) => k.privateKeyPem)]);
    const refused = await uploadFirmware(s, admin, signRelease(body, kit.releaseKey.privateKeyPem, delegation, [forged]), image);
    assert.deepEqual([refused.status, refused.body.error.details.reason], [400, 'root_rotation_invalid'], refused.text);
    const rotation = rotateRoot(pinned, rootKeySet(2, fresh), [kit.roots[0]!.privateKeyPem, kit.roots[2]!.privateKeyPem, ...fresh.map((k) => k.privateKeyPem)]);
    const ok = await uploadFirmware(s, admin, signRelease(body, kit.releaseKey.privateKeyPem, delegation, [rotation]), image);
    assert.deepEqual([ok.status, ok.body.state], [200, 'published'], ok.text);
    const audit = (await s.api('GET', '/api/v1/audit?result=error&limit=10', { token: admin })).body as { details: { reason?: string } }[];
    assert.ok(
      audit.some((e) => e.details.reason === 'root_rotation_invalid'),
      'the forged rotation is audited',
    );
  });
});

describe('firmware upload limits', () => {
  it('refuses every upload without a root key set, and an image larger than ota.artifactMaxBytes', async (t) => {
    const dir = tempDir(t);
    const kit = firmwareKit(dir);
    const missing = await startTestServer(t, { config: { ota: { rootKeysFile: `${dir}/none.json` } } });
    const image = randomBytes(2048);
    const refused = await uploadFirmware(missing, await missing.tokenFor(missing.adminKey), kit.release(image), image);
    assert.deepEqual([refused.status, refused.body.error.code], [409, 'BULWARK_ERR_OTA_NOT_CONFIGURED']);
    const small = await startTestServer(t, { config: { ota: { rootKeysFile: kit.rootFile, artifactMaxBytes: 1024 } } });
    const big = await uploadFirmware(small, await small.tokenFor(small.adminKey), kit.release(image), image);
    assert.deepEqual([big.status, big.body.error.code], [413, 'BULWARK_ERR_FIRMWARE_TOO_LARGE']);
  });
});

describe('firmware download and device status', () => {
  it('resumes a download cut at 50 % with Range over mutual TLS, and a committed device shows the new version', async (t) => {
    const { kit, s, admin } = await otaServer(t);
    const image = randomBytes(400_000);
    const fw = await uploadFirmware(s, admin, kit.release(image), image);
    assert.equal(fw.status, 200, fw.text);
    const d = await enrollDevice(s, admin, 'gw-7', { model: 'gw-1', hardwareRevision: 'C', firmwareVersion: '1.0.0' });
    await enrollDevice(s, admin, 'gw-old', { model: 'gw-1', hardwareRevision: 'A', firmwareVersion: '1.0.0' });
    const c = await connectDevice(s, d);
    t.after(() => c.end(true));
    await c.subscribeAsync('devices/gw-7/ota/job', { qos: 1 });

    const startRollout = (target: Record<string, unknown>, name = 'x') =>
      s.api('POST', '/api/v1/rollouts', { token: admin, body: { name, artifactId: fw.body.id, target, strategy: { waves: [{ percent: 100 }] }, gates: { minDevices: 1, onFailure: 'pause' } } });
    const wrongHardware = await startRollout({ deviceIds: ['gw-old'] });
    assert.equal(wrongHardware.status, 400);
    assert.match(wrongHardware.body.error.message, /1 incompatible hardware/);
    assert.equal((await s.api('POST', '/api/v1/groups', { token: admin, body: { id: 'old-gw', kind: 'static', members: ['gw-old'] } })).status, 201);
    assert.match((await startRollout({ group: 'old-gw' })).body.error.message, /1 incompatible hardware/, 'a group target is its members');
    assert.equal((await startRollout({ group: 'no-such-group' })).status, 404);
    assert.match((await startRollout({ group: 'old-gw', deviceIds: ['gw-7'] })).body.error.message, /by deviceIds or by group, not both/);
    assert.equal((await s.api('POST', '/api/v1/groups', { token: admin, body: { id: 'gw1-rev-c', kind: 'dynamic', query: { model: ['gw-1'], hardwareRevision: ['C'] } } })).status, 201);
    assert.equal((await deviceGet(s, d, `/v1/firmware/${fw.body.id as string}`)).status, 404, 'no job, no download');

    const jobArrives = nextMessage(c, 'devices/gw-7/ota/job');
    const created = await startRollout({ group: 'gw1-rev-c' }, 'gw 2.0.0');
    assert.equal(created.status, 201, created.text);
    const job = await jobArrives;
    const again = nextMessage(c, 'devices/gw-7/ota/job');
    await c.unsubscribeAsync('devices/gw-7/ota/job');
    await c.subscribeAsync('devices/gw-7/ota/job', { qos: 1 });
    assert.equal((await again).jobId, job.jobId, 'an unanswered job is sent again when the device subscribes');
    assert.equal(job.url, `/v1/firmware/${fw.body.id as string}`);
    assert.equal(job.manifest.release.signed.sha256, sha256(image));

    const cut = await deviceGet(s, d, job.url, {}, image.length / 2);
    assert.ok(cut.body.length >= image.length / 2 && cut.body.length < image.length, `cut after ${cut.body.length} bytes`);
    // The server counts what it wrote of the cut response until it sees that connection close.
    await eventually(
      () => s.api('GET', '/metrics'),
      (r) => /^bulwark_firmware_downloads_active 0$/m.test(r.text),
    );
    const before = await bytesServed(s);
    const rest = await deviceGet(s, d, job.url, { range: `bytes=${cut.body.length}-` });
    assert.equal(rest.status, 206);
    assert.equal(rest.headers.etag, `"${sha256(image)}"`);
    assert.equal(rest.headers['content-range'], `bytes ${cut.body.length}-${image.length - 1}/${image.length}`);
    assert.equal(sha256(Buffer.concat([cut.body, rest.body])), sha256(image));
    assert.equal((await bytesServed(s)) - before, image.length - cut.body.length, 'the resumed request sent only the missing bytes');
    assert.equal((await deviceGet(s, d, job.url, { range: `bytes=${image.length}-` })).status, 416);
    assert.equal((await deviceGet(s, d, '/v1/firmware/fw_other')).status, 404);

    for (const state of ['downloading', 'verifying', 'installing', 'rebooting', 'verifying-health']) await send(c, 'devices/gw-7/ota/status', { jobId: job.jobId, state, ts: Date.now() });
    await send(c, 'devices/gw-7/ota/status', { jobId: job.jobId, state: 'committed', ts: Date.now(), firmware: { version: '2.0.0', securityVersion: 5 } });
    await send(c, 'devices/gw-7/ota/status', { jobId: 'job_forged', state: 'committed', ts: Date.now() });
    await send(c, 'devices/gw-7/ota/status', { jobId: job.jobId, state: 'exploded', ts: Date.now() });
    await send(c, 'devices/gw-7/ota/status', { jobId: job.jobId, state: 'downloading', ts: Date.now() });
    await s.server.ota.rollouts.idle();
    const device = (await s.api('GET', '/api/v1/devices/gw-7', { token: admin })).body;
    assert.deepEqual([device.firmwareVersion, device.securityVersion], ['2.0.0', 5]);
    assert.deepEqual(
      (await s.api('GET', '/api/v1/devices?security=5', { token: admin })).body.map((x: { id: string }) => x.id),
      ['gw-7'],
    );
    assert.deepEqual(
      (await s.api('GET', '/api/v1/devices?securityBelow=5', { token: admin })).body.map((x: { id: string }) => x.id),
      ['gw-old'],
    );
    const rollout = (await s.api('GET', `/api/v1/rollouts/${created.body.id as string}`, { token: admin })).body;
    assert.equal(rollout.state, 'completed');
    assert.equal(rollout.totals.committed, 1);
    const metrics = (await s.api('GET', '/metrics')).text;
    for (const [result, n] of [
      ['unknown_job', 1],
      ['invalid', 1],
      ['late', 1],
      ['committed', 1],
      ['downloading', 1],
    ] as const) {
      assert.match(metrics, new RegExp(`bulwark_device_messages_total\\{kind="ota_status",result="${result}"\\} ${n}`), result);
    }
  });
});
