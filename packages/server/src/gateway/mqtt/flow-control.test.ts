import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { closed, connectDevice } from '../../testing/devices.js';
import { env, metric, setup } from '../../testing/telemetry.js';

/** Messages per flood: small in `npm test`, large in `npm run test:long`. */
const N = Number(process.env.BULWARK_TEST_FLOOD_MESSAGES ?? 600);

describe('MQTT flow control', () => {
  it(`slows a device publishing ${N} QoS 1 messages as fast as it can with default settings: never disconnected, each stored once, held to 100/s`, async (t) => {
    const { s, client } = await setup(t, { id: 'fast-1' });
    let closes = 0;
    client.on('close', () => {
      closes += 1;
    });
    const t0 = performance.now();
    await Promise.all(Array.from({ length: N }, (_, i) => client.publishAsync('devices/fast-1/telemetry', env(`f-${i}`, { temp_c: 20 }, { seq: i }), { qos: 1 })));
    const elapsedS = (performance.now() - t0) / 1000;
    assert.equal(closes, 0, 'never disconnected');
    assert.equal(client.connected, true);
    const rows = await s.server.store.telemetry.query({ deviceId: 'fast-1', limit: N + 100 });
    assert.equal(rows.length, N, 'every message stored');
    assert.equal(new Set(rows.map((r) => r.msgId)).size, N, 'each once');
    // The bucket holds 200 (the burst) when the flood starts; beyond it, tokens come at the
    // sustained rate from then on, so (N - burst) / elapsed can pass the rate only if the bound leaks.
    const burst = 200;
    const sustained = N > burst ? (N - burst) / elapsedS : Number.NaN;
    console.log(`flood of ${N}: ${elapsedS.toFixed(2)} s, (N - burst) / elapsed = ${sustained.toFixed(1)} msg/s (bound 100/s)`);
    if (N > burst) {
      assert.ok(sustained <= 100 * 1.02, `held to the bound: ${sustained.toFixed(1)} msg/s`);
      assert.ok(sustained >= 100 * 0.5, `not slowed far below it: ${sustained.toFixed(1)} msg/s`);
    }
    const held = await metric(s, /bulwark_mqtt_publishes_held_total (\d+)/);
    assert.ok(held >= (N - burst) / 2, `held, counted: ${held}`);
    assert.doesNotMatch((await s.api('GET', '/metrics')).text, /bulwark_mqtt_disconnects_total\{/);
  });

  it('stops reading the socket of a device that owes tokens, so that a trickle of publishes is not read ahead into memory', async (t) => {
    // Without the read pause every chunk is read while the earlier publishes wait (measured on the
    // earlier Aedes gateway: 1903 of 2000 trickled publishes held at once). With it, at most what
    // the socket's read buffer holds (about 460 of these), whatever the count.
    const { s, client } = await setup(t, { id: 'trickle-1', config: { mqtt: { publishRatePerSecond: 1000, publishBurst: 1, publishBacklogLimit: 1000 } } });
    let closes = 0;
    client.on('close', () => {
      closes += 1;
    });
    const acks: Promise<unknown>[] = [];
    for (let i = 0; i < 2000; i += 1) {
      acks.push(client.publishAsync('devices/trickle-1/telemetry', env(`t-${i}`, { temp_c: 1 }, { seq: i }), { qos: 1 }));
      await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(acks);
    assert.equal(closes, 0);
    assert.equal(await metric(s, /bulwark_mqtt_limit_hits_total\{limit="publish_backlog"\} (\d+)/), 0);
    assert.equal((await s.server.store.telemetry.query({ deviceId: 'trickle-1', limit: 3000 })).length, 2000);
  });

  it('disconnects a device past the hard abuse bound, with the reason counted, and takes it back at once', async (t) => {
    const { s, device, client } = await setup(t, { id: 'abuser-1', config: { mqtt: { publishRatePerSecond: 1, publishBurst: 1, publishBacklogLimit: 3 } } });
    const gone = closed(client);
    for (let i = 0; i < 50; i += 1) client.publish('devices/abuser-1/telemetry', env(`a-${i}`, { temp_c: 1 }), { qos: 1 });
    await gone;
    const text = (await s.api('GET', '/metrics')).text;
    assert.match(text, /bulwark_mqtt_limit_hits_total\{limit="publish_backlog"\} 1/);
    assert.match(text, /bulwark_mqtt_disconnects_total\{reason="publish_backlog_exceeded"\} 1/);
    const again = await connectDevice(s, device);
    t.after(() => again.end(true));
    assert.equal(again.connected, true);
  });
});
