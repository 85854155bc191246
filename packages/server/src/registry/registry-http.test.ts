import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startTestServer } from '../testing/harness.js';
import { connectDevice, enrollDevice, makeDeviceKeys } from '../testing/devices.js';

describe('the device registry over HTTP', () => {
  it('creates, filters, pages and shows devices, with lifecycle transitions validated', async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    for (let i = 0; i < 12; i += 1) {
      const res = await s.api('POST', '/api/v1/devices', {
        token: admin,
        body: { id: `th-${String(i).padStart(2, '0')}`, model: i % 2 ? 'thermo-2' : 'thermo-1', firmwareVersion: i < 4 ? '1.0.0' : '1.1.0', tags: i % 3 === 0 ? ['site=north', 'pilot'] : ['site=south'] },
      });
      assert.equal(res.status, 201, res.text);
    }
    const dup = await s.api('POST', '/api/v1/devices', { token: admin, body: { id: 'th-00' } });
    assert.equal(dup.status, 409);
    for (const bad of ['a/b', 'a+b', '#', 'x y', '$SYS']) {
      const res = await s.api('POST', '/api/v1/devices', { token: admin, body: { id: bad } });
      assert.equal(res.status, 400, bad);
      assert.equal(res.body.error.code, 'BULWARK_ERR_DEVICE_ID_INVALID', bad);
    }
    const list = async (q: string) => (await s.api('GET', `/api/v1/devices?${q}`, { token: admin })).body.map((d: { id: string }) => d.id);
    assert.equal((await list('model=thermo-2')).length, 6);
    assert.deepEqual(await list('tag=pilot'), ['th-00', 'th-03', 'th-06', 'th-09']);
    assert.equal((await list('firmware=1.0.0')).length, 4);
    assert.equal((await list('state=manufactured')).length, 12);
    assert.equal((await list('online=true')).length, 0);
    const page1 = await list('limit=5');
    const page2 = await list(`limit=5&after=${page1.at(-1)}`);
    assert.deepEqual(page1, ['th-00', 'th-01', 'th-02', 'th-03', 'th-04']);
    assert.equal(page2[0], 'th-05');
    // `_` in a tag is matched as itself, not as LIKE's any-character.
    await s.api('PATCH', '/api/v1/devices/th-10', { token: admin, body: { tags: ['line_1'] } });
    await s.api('PATCH', '/api/v1/devices/th-11', { token: admin, body: { tags: ['linex1'] } });
    assert.deepEqual(await list('tag=line_1'), ['th-10']);

    assert.equal((await s.api('POST', '/api/v1/groups', { token: admin, body: { id: 'plant-7', kind: 'static' } })).status, 201);
    const patched = await s.api('PATCH', '/api/v1/devices/th-01', { token: admin, body: { owner: 'group:plant-7', location: 'hall B', tags: ['site=east'] } });
    assert.equal(patched.body.owner, 'group:plant-7');
    assert.deepEqual(patched.body.tags, ['site=east']);
    const resume = await s.api('POST', '/api/v1/devices/th-02/resume', { token: admin });
    assert.equal(resume.status, 409, 'only a suspended device resumes');
    assert.equal((await s.api('POST', '/api/v1/devices/th-02/suspend', { token: admin })).body.state, 'suspended');
    assert.equal((await s.api('POST', '/api/v1/devices/th-02/resume', { token: admin })).body.state, 'manufactured', 'resume returns to the state before suspension');
    assert.equal((await s.api('POST', '/api/v1/devices/th-02/decommission', { token: admin })).body.state, 'decommissioned');
    for (const verb of ['suspend', 'resume', 'decommission']) {
      assert.equal((await s.api('POST', `/api/v1/devices/th-02/${verb}`, { token: admin })).body.error.code, 'BULWARK_ERR_LIFECYCLE', verb);
    }
    const stats = await s.api('GET', '/api/v1/devices/stats', { token: admin });
    assert.deepEqual(stats.body.byState, { manufactured: 11, provisioned: 0, active: 0, suspended: 0, decommissioned: 1 });
    assert.equal(stats.body.total, 12);
    assert.deepEqual(stats.body.byConnectivity, { online: 0, offline: 11 }, 'the decommissioned device counts only by state');
    assert.deepEqual(stats.body.byAlertState, { firing: 0, acknowledged: 0, none: 11 });
    assert.deepEqual(stats.body.byModel, [
      { value: 'thermo-2', count: 6 },
      { value: 'thermo-1', count: 5 },
    ]);
    assert.deepEqual(stats.body.byFirmware, [
      { value: '1.1.0', count: 8 },
      { value: '1.0.0', count: 3 },
    ]);
    const audit = await s.api('GET', '/api/v1/audit?action=device.suspend', { token: admin });
    assert.equal(audit.body[0]?.target, 'th-02');
  });

  it('moves a device from manufactured to provisioned on enrollment and to active on first connect', async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    const d = await enrollDevice(s, admin, 'valve-1', { model: 'v2' });
    assert.equal((await s.api('GET', '/api/v1/devices/valve-1', { token: admin })).body.state, 'provisioned');
    const c = await connectDevice(s, d);
    t.after(() => c.end(true));
    const shown = (await s.api('GET', '/api/v1/devices/valve-1', { token: admin })).body;
    assert.equal(shown.state, 'active');
    assert.equal((await s.api('GET', '/api/v1/devices?online=true', { token: admin })).body.length, 1);
  });

  it('onboards 1,000 devices in one batch, each token enrolling once and only once', async (t) => {
    const s = await startTestServer(t, { config: { http: { port: 0, bodyLimitBytes: 4_194_304 }, auth: { lockoutThreshold: 1000 } } });
    const admin = await s.tokenFor(s.adminKey);
    const devices = Array.from({ length: 1000 }, (_, i) => ({ id: `f-${String(i).padStart(4, '0')}`, serial: `SN${i}`, model: 'meter', hardwareRevision: 'B' }));
    const t0 = performance.now();
    const batch = await s.api('POST', '/api/v1/devices/batch', { token: admin, body: { batchId: 'lot-1', devices } });
    console.log(`batch of 1,000 devices onboarded in ${(performance.now() - t0).toFixed(0)} ms`);
    assert.equal(batch.status, 201, batch.text.slice(0, 300));
    const tokens = batch.body.devices.map((d: { token: string }) => d.token);
    assert.equal(new Set(tokens).size, 1000);
    assert.equal((await s.api('GET', '/api/v1/devices/stats', { token: admin })).body.byState.manufactured, 1000);
    const again = await s.api('POST', '/api/v1/devices/batch', { token: admin, body: { devices: [{ id: 'f-0001' }, { id: 'new-1' }] } });
    assert.equal(again.status, 409, 'a batch naming an existing device is refused whole');
    assert.equal((await s.api('GET', '/api/v1/devices/new-1', { token: admin })).status, 404);

    const sample = [0, 1, 137, 500, 998, 999];
    for (const i of sample) {
      const keys = await makeDeviceKeys();
      const [first, second] = await Promise.all([s.api('POST', '/api/v1/enroll', { body: { token: tokens[i], csr: keys.csrPem } }), s.api('POST', '/api/v1/enroll', { body: { token: tokens[i], csr: keys.csrPem } })]);
      assert.deepEqual([first.status, second.status].sort(), [201, 401], `token ${i} used twice at once`);
      const later = await s.api('POST', '/api/v1/enroll', { body: { token: tokens[i], csr: keys.csrPem } });
      assert.equal(later.body.error.code, 'BULWARK_ERR_CLAIM_TOKEN_INVALID');
    }
    const crossed = await s.api('POST', '/api/v1/enroll', { body: { token: `${tokens[5].slice(0, -3)}AAA`, csr: (await makeDeviceKeys()).csrPem } });
    assert.equal(crossed.status, 401, 'a forged secret fails');
    const audit = await s.api('GET', '/api/v1/audit?action=device.batch-onboard', { token: admin });
    assert.equal(audit.body.filter((e: { result: string }) => e.result === 'ok').length, 1);
  });

  it('refuses expired claim tokens', async (t) => {
    const { ManualClock } = await import('@bulwark/core');
    const clock = new ManualClock(Date.now());
    const s = await startTestServer(t, { clock });
    const admin = await s.tokenFor(s.adminKey);
    await s.api('POST', '/api/v1/devices', { token: admin, body: { id: 'late-1' } });
    const claim = await s.api('POST', '/api/v1/devices/late-1/claim-tokens', { token: admin, body: { ttlSeconds: 60 } });
    clock.advance(61_000);
    const res = await s.api('POST', '/api/v1/enroll', { body: { token: claim.body.token, csr: (await makeDeviceKeys()).csrPem } });
    assert.equal(res.status, 401);
    assert.equal(res.body.error.code, 'BULWARK_ERR_CLAIM_TOKEN_INVALID');
  });
});
