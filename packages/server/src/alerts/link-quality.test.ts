import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '@bulwark/core';
import { eventually } from '../testing/eventually.js';
import { env, setup } from '../testing/telemetry.js';

interface AlertView {
  id: string;
  deviceId: string;
  type: string;
  summary: string;
  details: Record<string, unknown>;
}

describe('link quality: readings a device lost or repeated, per device', () => {
  it('a gap in the sequence past the built-in limit fires once and lowers the health score; an hour without trouble resolves it', { timeout: 60_000 }, async (t) => {
    const clock = new ManualClock(Date.now());
    const { s, admin, client } = await setup(t, { clock });
    const open = async () => (await s.api('GET', '/api/v1/alerts?state=open&ruleId=builtin-link-quality', { token: admin })).body as AlertView[];
    const score = async () => ((await s.api('GET', '/api/v1/devices/sensor-1', { token: admin })).body as { healthScore: number }).healthScore;
    const publish = (id: string, seq: number) => client.publishAsync('devices/sensor-1/telemetry', env(id, { temp_c: 20 }, { seq, boot: 'b1' }), { qos: 1 });

    await publish('m1', 1);
    await publish('m2', 2);
    // The same reading again (a retry whose acknowledgement was lost): stored once, counted as repeated.
    await publish('m2', 2);
    assert.deepEqual(await open(), []);
    assert.equal(await score(), 100);
    // Readings 3-14 never arrived: 12 lost, past the built-in 10 an hour.
    await publish('m15', 15);
    const [fired] = await eventually(open, (a) => a.length === 1);
    assert.equal(fired?.type, 'link_quality');
    assert.equal(fired?.summary, '12 readings lost and 1 sent again within 1h');
    assert.equal(await score(), 85);
    await publish('m16', 16);
    assert.equal((await open()).length, 1);

    clock.advance(3_600_001);
    // Tokens are timed by the same clock.
    const fresh = await s.tokenFor(s.adminKey);
    s.server.alerts.fleet.tick();
    await eventually(
      async () => (await s.api('GET', '/api/v1/alerts?state=open&ruleId=builtin-link-quality', { token: fresh })).body as AlertView[],
      (a) => a.length === 0,
    );
    assert.equal(((await s.api('GET', '/api/v1/devices/sensor-1', { token: fresh })).body as { healthScore: number }).healthScore, 100);
    // Each transition wrote its audit entry in its own transaction: the chain holds.
    const audit = (await s.api('GET', '/api/v1/audit?action=alert.resolve', { token: fresh })).body as { target: string }[];
    assert.deepEqual(
      audit.map((e) => e.target),
      [fired?.id],
    );
    assert.equal(((await s.api('POST', '/api/v1/audit/verify', { token: fresh })).body as { ok: boolean }).ok, true);
  });
});
