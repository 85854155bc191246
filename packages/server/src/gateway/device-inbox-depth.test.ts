import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ENVELOPE_LIMITS } from '@bulwark/protocol';
import { deviceMetric, nextMessage, send } from '../testing/device-messages.js';
import { connectDevice, enrollDevice } from '../testing/devices.js';
import { startTestServer } from '../testing/harness.js';

const nestedArrays = (levels: number) => '['.repeat(levels) + ']'.repeat(levels);

describe('device inputs and deeply nested JSON', () => {
  it('refuses a twin report or log batch nested past ENVELOPE_LIMITS.maxDepth with too_deep, counted, and stays up', async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    const c = await connectDevice(s, await enrollDevice(s, admin, 'valve-1'));
    t.after(() => c.end(true));
    await c.subscribeAsync('devices/valve-1/errors', { qos: 1 });

    // 8,000 levels fit in the 16 KiB a twin report may have; storing them (JSON.stringify) would overflow the stack.
    let notice = nextMessage(c, 'devices/valve-1/errors');
    await send(c, 'devices/valve-1/twin/reported', `{"version":0,"status":"applied","config":{"a":${nestedArrays(8000)}},"ts":1}`);
    assert.equal((await notice).reason, 'too_deep');
    notice = nextMessage(c, 'devices/valve-1/errors');
    await send(c, 'devices/valve-1/logs', `{"entries":[{"ts":1,"level":"info","msg":"m","data":{"a":${nestedArrays(100_000)}}}]}`);
    assert.equal((await notice).reason, 'too_deep');
    assert.equal(await deviceMetric(s, 'twin_reported', 'too_deep'), 1);
    assert.equal(await deviceMetric(s, 'logs', 'too_deep'), 1);

    // The deepest report the contract allows is stored.
    const limit = ENVELOPE_LIMITS.maxDepth;
    await send(c, 'devices/valve-1/twin/reported', `{"version":0,"status":"applied","config":{"a":${nestedArrays(limit - 2)}},"ts":1}`);
    assert.equal(await deviceMetric(s, 'twin_reported', 'too_deep'), 1);
    const twin = await s.api('GET', '/api/v1/devices/valve-1/twin', { token: admin });
    assert.equal(twin.body.reported?.version, 0, twin.text);
    assert.equal(c.connected, true);
  });

  it('dead-letters a telemetry envelope 100,000 levels deep (as device HTTPS hands it to ingest) as too_deep', async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    await enrollDevice(s, admin, 'meter-1');
    const payload = Buffer.from(`{"id":"m1","schema":"env-sensor@1","data":{"a":${nestedArrays(100_000)}}}`);
    const result = await s.server.ingest.accept({ deviceId: 'meter-1', transport: 'http', topic: null, payload, receivedAt: Date.now() });
    assert.equal(result.status, 'dead_lettered');
    assert.equal(result.status === 'dead_lettered' ? result.reason : undefined, 'too_deep');
    const letters = await s.api('GET', '/api/v1/dead-letters', { token: admin });
    assert.equal(letters.status, 200, letters.text.slice(0, 300));
    assert.equal(letters.body.length, 1);
  });
});
