import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { closed, connectDevice, enrollDevice } from '../../testing/devices.js';
import { startTestServer } from '../../testing/harness.js';

describe('MQTT sessions through the session table', () => {
  it('ends the older connection when the device connects again (taken_over, counted), keeps it online, and delivers to the new one', async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    const d = await enrollDevice(s, admin, 'tk-1');
    const first = await connectDevice(s, d);
    t.after(() => first.end(true));
    const firstGone = closed(first);
    const second = await connectDevice(s, d);
    t.after(() => second.end(true));
    await firstGone;
    const mqtt = s.server.mqtt!;
    assert.equal(mqtt.isConnected('tk-1'), true);
    assert.equal(mqtt.sessionCount, 1);
    assert.match((await s.api('GET', '/metrics')).text, /bulwark_mqtt_disconnects_total\{reason="taken_over"\} 1/);
    const shown = await s.api('GET', '/api/v1/devices/tk-1', { token: admin });
    assert.equal(shown.body.connectivity.online, true, 'a takeover does not mark the device offline');

    await second.subscribeAsync('devices/tk-1/commands/#', { qos: 1 });
    const got = new Promise<string>((resolve) => second.once('message', (topic, payload) => resolve(`${topic} ${payload.toString()}`)));
    assert.equal(await mqtt.publishToDevice('tk-1', 'devices/tk-1/commands/ping', Buffer.from('{}'), 1), true);
    assert.equal(await got, 'devices/tk-1/commands/ping {}');
    assert.equal(await mqtt.publishToDevice('nobody', 'devices/nobody/commands/ping', Buffer.from('{}'), 1), false);

    await second.endAsync();
    assert.equal(mqtt.isConnected('tk-1'), false);
    assert.equal(mqtt.sessionCount, 0);
    const after = await s.api('GET', '/api/v1/devices/tk-1', { token: admin });
    assert.equal(after.body.connectivity.lastDisconnectReason, 'client_disconnected');
  });
});
