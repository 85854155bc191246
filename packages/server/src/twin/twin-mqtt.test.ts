import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '@bulwark/core';
import { deviceMetric, nextMessage, send } from '../testing/device-messages.js';
import { connectDevice, enrollDevice } from '../testing/devices.js';
import { startTestServer } from '../testing/harness.js';

const TOPIC = 'devices/valve-1/twin/desired';

describe('the device twin over MQTT', () => {
  it('sends desired configuration, tracks reports and shows drift after the threshold', async (t) => {
    const clock = new ManualClock(Date.now());
    const s = await startTestServer(t, { clock, config: { twin: { driftThresholdMs: 60_000 } } });
    const admin = await s.tokenFor(s.adminKey);
    const d = await enrollDevice(s, admin, 'valve-1');
    const fresh = await s.api('GET', '/api/v1/devices/valve-1/twin', { token: admin });
    assert.deepEqual([fresh.body.desired, fresh.body.inSync, fresh.body.drifted], [null, true, false]);

    const c = await connectDevice(s, d);
    t.after(() => c.end(true));
    await c.subscribeAsync(TOPIC, { qos: 1 });
    let got = nextMessage(c, TOPIC);
    const set = await s.api('PUT', '/api/v1/devices/valve-1/twin/desired', { token: admin, body: { config: { rateS: 5, mode: 'eco' } } });
    assert.equal(set.status, 200, set.text);
    assert.equal(set.body.desired.version, 1);
    assert.equal(set.body.inSync, false);
    assert.deepEqual(await got, { version: 1, config: { rateS: 5, mode: 'eco' }, ts: clock.now() });

    await send(c, 'devices/valve-1/twin/reported', { version: 1, status: 'applied', config: { rateS: 5, mode: 'eco', logLevel: 'info' }, ts: Date.now() });
    const synced = (await s.api('GET', '/api/v1/devices/valve-1/twin', { token: admin })).body;
    assert.deepEqual([synced.inSync, synced.driftSince, synced.reported.version], [true, null, 1], 'extra reported keys (device defaults) are not drift');

    const conflict = await s.api('PUT', '/api/v1/devices/valve-1/twin/desired', { token: admin, body: { config: { rateS: 1 }, ifVersion: 0 } });
    assert.equal(conflict.status, 409);
    assert.equal(conflict.body.error.code, 'BULWARK_ERR_VERSION_CONFLICT');
    got = nextMessage(c, TOPIC);
    assert.equal((await s.api('PUT', '/api/v1/devices/valve-1/twin/desired', { token: admin, body: { config: { rateS: 1 }, ifVersion: 1 } })).body.desired.version, 2);
    assert.equal((await got).version, 2);
    await send(c, 'devices/valve-1/twin/reported', { version: 2, status: 'rejected', config: { rateS: 5, mode: 'eco' }, reason: 'params_invalid', detail: 'rateS: below 2', ts: Date.now() });
    const rejected = (await s.api('GET', '/api/v1/devices/valve-1/twin', { token: admin })).body;
    assert.deepEqual([rejected.inSync, rejected.drifted, rejected.reported.reason], [false, false, 'params_invalid']);
    assert.deepEqual((await s.api('GET', '/api/v1/twin/drift', { token: admin })).body, []);
    assert.deepEqual((await s.api('GET', '/api/v1/devices?drifted=true', { token: admin })).body, [], 'not drifted before the threshold, in the registry either');
    clock.advance(60_001);
    assert.deepEqual(
      (await s.api('GET', '/api/v1/devices?drifted=true', { token: admin })).body.map((d: { id: string }) => d.id),
      ['valve-1'],
      'the registry lists drifted devices',
    );
    const drifted = (await s.api('GET', '/api/v1/devices/valve-1/twin', { token: admin })).body;
    assert.equal(drifted.drifted, true);
    assert.deepEqual(
      (await s.api('GET', '/api/v1/twin/drift', { token: admin })).body.map((x: { deviceId: string }) => x.deviceId),
      ['valve-1'],
    );

    // An older version is what the device runs: still drift. A version never desired is ignored and counted.
    await send(c, 'devices/valve-1/twin/reported', { version: 1, status: 'applied', config: { rateS: 5 }, ts: Date.now() });
    assert.equal((await s.api('GET', '/api/v1/devices/valve-1/twin', { token: admin })).body.drifted, true);
    assert.equal(await deviceMetric(s, 'twin_reported', 'stale_version'), 1);
    await send(c, 'devices/valve-1/twin/reported', { version: 99, status: 'applied', config: {}, ts: Date.now() });
    assert.equal(await deviceMetric(s, 'twin_reported', 'unknown_version'), 1);
    await send(c, 'devices/valve-1/twin/reported', { version: 2, status: 'applied', config: { rateS: 1, mode: 'eco' }, ts: Date.now() });
    assert.deepEqual((await s.api('GET', '/api/v1/twin/drift', { token: admin })).body, []);

    const audit = await s.api('GET', '/api/v1/audit?action=twin.desired.set', { token: admin });
    assert.equal(audit.body.filter((e: { result: string }) => e.result === 'ok').length, 2);
    const tooBig = await s.api('PUT', '/api/v1/devices/valve-1/twin/desired', { token: admin, body: { config: { blob: 'x'.repeat(17_000) } } });
    assert.equal(tooBig.body.error.code, 'BULWARK_ERR_DEVICE_MESSAGE_TOO_LARGE');
    assert.equal((await s.api('GET', '/api/v1/devices/nobody/twin', { token: admin })).status, 404);
  });

  it('refuses malformed reports with a reason on the errors topic, and stays up', async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    const c = await connectDevice(s, await enrollDevice(s, admin, 'valve-1'));
    t.after(() => c.end(true));
    await c.subscribeAsync('devices/valve-1/errors', { qos: 1 });
    const notice = nextMessage(c, 'devices/valve-1/errors');
    await send(c, 'devices/valve-1/twin/reported', '{"version": "one"');
    assert.equal((await notice).reason, 'malformed_json');
    const invalid = nextMessage(c, 'devices/valve-1/errors');
    await send(c, 'devices/valve-1/twin/reported', { version: -1, status: 'maybe', config: [], ts: 'now' });
    assert.equal((await invalid).reason, 'invalid');
    assert.equal(await deviceMetric(s, 'twin_reported', 'invalid'), 1);
    assert.equal(c.connected, true);
    assert.equal((await s.api('GET', '/readyz')).status, 200);
  });

  it('delivers the stored desired configuration on subscribe: after being offline and after a server restart', async (t) => {
    const first = await startTestServer(t, { keepRunning: true });
    const admin = await first.tokenFor(first.adminKey);
    const d = await enrollDevice(first, admin, 'valve-1');
    assert.equal((await first.api('PUT', '/api/v1/devices/valve-1/twin/desired', { token: admin, body: { config: { rateS: 7 } } })).status, 200, 'offline: stored only');
    const c1 = await connectDevice(first, d);
    const got = nextMessage(c1, TOPIC);
    await c1.subscribeAsync('devices/valve-1/#', { qos: 1 });
    assert.deepEqual((await got).config, { rateS: 7 });
    await c1.endAsync();
    await first.server.stop();

    const second = await startTestServer(t, { dataDir: first.dataDir, adminKey: first.adminKey });
    const c2 = await connectDevice(second, d);
    t.after(() => c2.end(true));
    const again = nextMessage(c2, TOPIC);
    await c2.subscribeAsync(TOPIC, { qos: 1 });
    assert.deepEqual(await again, { version: 1, config: { rateS: 7 }, ts: (await again).ts });
  });
});
