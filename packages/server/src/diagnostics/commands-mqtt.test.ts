import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '@bulwark/core';
import { deviceMetric, nextMessage, send } from '../testing/device-messages.js';
import { connectDevice, enrollDevice } from '../testing/devices.js';
import { startTestServer } from '../testing/harness.js';

describe('remote commands over MQTT', () => {
  it('sends a command, follows the device through accepted to succeeded, and ignores unknown results', async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    const c = await connectDevice(s, await enrollDevice(s, admin, 'gw-1'));
    t.after(() => c.end(true));
    await c.subscribeAsync('devices/gw-1/commands/+', { qos: 1 });
    const got = nextMessage(c, 'devices/gw-1/commands/reboot');
    const issued = await s.api('POST', '/api/v1/devices/gw-1/commands/reboot', { token: admin, body: { params: { delayS: 3 }, ttlS: 120 } });
    assert.equal(issued.status, 201, issued.text);
    assert.equal(issued.body.status, 'sent');
    const request = await got;
    assert.deepEqual(request, { id: issued.body.id, params: { delayS: 3 }, issuedAt: issued.body.issuedAt, expiresAt: issued.body.issuedAt + 120_000 });

    await send(c, 'devices/gw-1/commands/reboot/result', { id: request.id, status: 'accepted', ts: Date.now() });
    assert.equal((await s.api('GET', `/api/v1/devices/gw-1/commands/${request.id}`, { token: admin })).body.status, 'accepted');
    await send(c, 'devices/gw-1/commands/reboot/result', { id: request.id, status: 'succeeded', output: { rebootingInS: 3 }, ts: Date.now() });
    const done = (await s.api('GET', `/api/v1/devices/gw-1/commands/${request.id}`, { token: admin })).body;
    assert.deepEqual([done.status, done.output, done.sendCount], ['succeeded', { rebootingInS: 3 }, 1]);
    await send(c, 'devices/gw-1/commands/reboot/result', { id: request.id, status: 'failed', ts: Date.now() });
    assert.equal((await s.api('GET', `/api/v1/devices/gw-1/commands/${request.id}`, { token: admin })).body.status, 'succeeded', 'a final state stays');
    assert.equal(await deviceMetric(s, 'command_result', 'duplicate'), 1);

    await send(c, 'devices/gw-1/commands/reboot/result', { id: 'cmd_unknown', status: 'succeeded', ts: Date.now() });
    await send(c, 'devices/gw-1/commands/other/result', { id: request.id, status: 'succeeded', ts: Date.now() });
    assert.equal(await deviceMetric(s, 'command_result', 'unknown_id'), 2);
    await send(c, 'devices/gw-1/commands/bogus/result', { id: null, status: 'rejected', reason: 'params_invalid', ts: Date.now() });
    assert.equal(await deviceMetric(s, 'command_result', 'unidentified'), 1);
    await send(c, 'devices/gw-1/commands/reboot/result', 'not json');
    assert.equal(await deviceMetric(s, 'command_result', 'malformed_json'), 1);
    assert.equal(c.connected, true);

    const list = await s.api('GET', '/api/v1/devices/gw-1/commands?status=succeeded', { token: admin });
    assert.deepEqual(
      list.body.map((x: { id: string }) => x.id),
      [request.id],
    );
    const audit = await s.api('GET', '/api/v1/audit?action=device.command', { token: admin });
    assert.equal(audit.body[0]?.target, 'gw-1');
    for (const [name, body, code] of [
      ['reboot', { params: { blob: 'x'.repeat(17_000) } }, 'BULWARK_ERR_DEVICE_MESSAGE_TOO_LARGE'],
      ['logs.stream', { params: { level: 'loud', durationS: 99_999 } }, 'BULWARK_ERR_VALIDATION'],
      ['reboot', { ttlS: 10_000_000 }, 'BULWARK_ERR_VALIDATION'],
    ] as const) {
      assert.equal((await s.api('POST', `/api/v1/devices/gw-1/commands/${name}`, { token: admin, body })).body.error.code, code, name);
    }
    assert.equal((await s.api('POST', '/api/v1/devices/gw-1/commands/a+b', { token: admin, body: {} })).status, 400);
  });

  it('keeps commands for an offline device until it subscribes or they expire; refuses when asked to', async (t) => {
    const clock = new ManualClock(Date.now());
    const s = await startTestServer(t, { clock });
    const admin = await s.tokenFor(s.adminKey);
    const d = await enrollDevice(s, admin, 'gw-2');
    const refused = await s.api('POST', '/api/v1/devices/gw-2/commands/ping', { token: admin, body: { ifOffline: 'refuse' } });
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error.code, 'BULWARK_ERR_DEVICE_OFFLINE');
    const short = await s.api('POST', '/api/v1/devices/gw-2/commands/ping', { token: admin, body: { ttlS: 30 } });
    const kept = await s.api('POST', '/api/v1/devices/gw-2/commands/collect', { token: admin, body: { params: { what: 'dmesg' }, ttlS: 600 } });
    assert.deepEqual([short.body.status, kept.body.status], ['pending', 'pending']);
    clock.advance(31_000);
    assert.deepEqual([(await s.api('GET', `/api/v1/devices/gw-2/commands/${short.body.id}`, { token: admin })).body.status], ['expired']);

    const c = await connectDevice(s, d);
    t.after(() => c.end(true));
    const received: string[] = [];
    c.on('message', (topic) => received.push(topic));
    const got = nextMessage(c, 'devices/gw-2/commands/collect');
    await c.subscribeAsync('devices/gw-2/commands/#', { qos: 1 });
    assert.equal((await got).id, kept.body.id);
    assert.deepEqual(received, ['devices/gw-2/commands/collect'], 'the expired command is never sent');
    const sent = (await s.api('GET', `/api/v1/devices/gw-2/commands/${kept.body.id}`, { token: admin })).body;
    assert.deepEqual([sent.status, sent.sendCount], ['sent', 1]);
  });

  it('limits commands per device and per principal with 429', async (t) => {
    const s = await startTestServer(t, { config: { commands: { perDevicePerMinute: 3, perPrincipalPerMinute: 5 } } });
    const admin = await s.tokenFor(s.adminKey);
    for (const id of ['a', 'b']) await s.api('POST', '/api/v1/devices', { token: admin, body: { id } });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i += 1) statuses.push((await s.api('POST', '/api/v1/devices/a/commands/ping', { token: admin, body: {} })).status);
    assert.deepEqual(statuses, [201, 201, 201, 429]);
    const other = [];
    for (let i = 0; i < 3; i += 1) other.push(await s.api('POST', '/api/v1/devices/b/commands/ping', { token: admin, body: {} }));
    assert.deepEqual(
      other.map((r) => r.status),
      [201, 201, 429],
      'five commands a minute for the principal, whatever the device',
    );
    const principal = other[2];
    assert.equal(principal?.body.error.code, 'BULWARK_ERR_RATE_LIMITED');
    assert.equal(principal?.body.error.details.per, 'principal');
    assert.ok(Number(principal?.headers.get('retry-after')) >= 1);
  });
});
