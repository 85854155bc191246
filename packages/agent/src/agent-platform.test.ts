import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { skewedClock } from './clock.js';
import { agentConfig, startAgent, startPlatform, until } from './testing/platform.js';

describe('agent against the real platform (port 0, mutual TLS)', () => {
  it('enrolls on first start, and with its wall clock 3 h fast still gets correct normalised times', async (t) => {
    const p = await startPlatform(t);
    const SKEW = 3 * 3_600_000;
    const agent = await startAgent(await agentConfig(t, p, 'skewed-1'), { clock: skewedClock(SKEW) });
    // Some readings are taken before the first time sync, some after.
    for (let n = 1; n <= 10; n += 1) await agent.send('env-sensor@2', { n });
    await once(agent, 'timeSynced');
    for (let n = 11; n <= 20; n += 1) await agent.send('env-sensor@2', { n });
    await until('20 readings stored', async () => (await p.readings('skewed-1')).length === 20);
    const rows = await p.readings('skewed-1');
    for (const r of rows) {
      assert.ok(Math.abs(r.ts - r.receivedAt) < 2_000, `reading ${r.msgId}: normalised ${r.ts} vs received ${r.receivedAt}`);
      assert.ok(Math.abs(r.ts - Date.now()) < 60_000, 'normalised time is real time, not the device clock');
    }
    const offset = agent.status().timeOffsetMs ?? 0;
    assert.ok(Math.abs(offset + SKEW) < 1_000, `offset estimate ${offset} ms for a +${SKEW} ms clock`);
  });

  it('renews its certificate over MQTT when due and reconnects with the new one', async (t) => {
    const p = await startPlatform(t);
    const agent = await startAgent(await agentConfig(t, p, 'renew-1', { identity: { renewAtFraction: 0 } }));
    const before = agent.status().certificate.serial;
    const [{ serial }] = (await once(agent, 'renewed')) as [{ serial: string }];
    assert.notEqual(serial, before);
    await once(agent, 'connected');
    await agent.send('env-sensor@2', { n: 1 });
    await until('reading stored with the new certificate', async () => (await p.readings('renew-1')).length === 1);
    const certs = await p.s.api('GET', '/api/v1/devices/renew-1/certificates', { token: p.admin });
    assert.equal(certs.status, 200, certs.text);
    const text = JSON.stringify(certs.body);
    assert.ok(text.includes(serial), 'the platform knows the new certificate');
  });
});
