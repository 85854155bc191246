import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '@bulwark/core';
import { deviceMetric, nextMessage, send } from '../testing/device-messages.js';
import { connectDevice, enrollDevice } from '../testing/devices.js';
import { startTestServer } from '../testing/harness.js';

const health = (uptimeS: number, extra: Record<string, unknown> = {}) => ({ ts: Date.now(), boot: 'b1', uptimeS, cpuLoad1: 0.2, memUsedBytes: 1000, memTotalBytes: 4000, ...extra });

describe('device health, events and remote logs over MQTT', () => {
  it('stores health reports with a bounded history, flags a restart loop and survives bad reports', async (t) => {
    const clock = new ManualClock(Date.now());
    const s = await startTestServer(t, { clock, config: { health: { historyPerDevice: 3, minIntervalMs: 1000 } } });
    const admin = await s.tokenFor(s.adminKey);
    const c = await connectDevice(s, await enrollDevice(s, admin, 'pump-1'));
    t.after(() => c.end(true));
    for (let i = 1; i <= 5; i += 1) {
      if (i > 1) clock.advance(1000);
      await send(c, 'devices/pump-1/health', health(i * 60));
    }
    await send(c, 'devices/pump-1/health', health(999));
    assert.equal(await deviceMetric(s, 'health', 'stored'), 5);
    assert.equal(await deviceMetric(s, 'health', 'too_frequent'), 1, 'a report within health.minIntervalMs is dropped');
    const view = (await s.api('GET', '/api/v1/devices/pump-1/health', { token: admin })).body;
    assert.deepEqual(
      view.history.map((h: { report: { uptimeS: number } }) => h.report.uptimeS),
      [300, 240, 180],
    );
    assert.deepEqual([view.latest.report.uptimeS, view.restartLoop], [300, false]);
    // The first report of a new boot counts however soon it comes (a revert right after an update), then the limit holds again.
    await send(c, 'devices/pump-1/health', health(2, { boot: 'b2' }));
    await send(c, 'devices/pump-1/health', health(3, { boot: 'b2' }));
    assert.deepEqual([await deviceMetric(s, 'health', 'stored'), await deviceMetric(s, 'health', 'too_frequent')], [6, 2]);
    clock.advance(1000);

    clock.advance(1000);
    await send(c, 'devices/pump-1/health', health(5, { restartReason: 'watchdog', recentRestarts: 6, restartLoop: true, crashCount: 6 }));
    assert.equal((await s.api('GET', '/api/v1/devices/pump-1/health', { token: admin })).body.restartLoop, true);

    await c.subscribeAsync('devices/pump-1/errors', { qos: 1 });
    const bad: unknown[] = ['{', [], { ts: 1, uptimeS: -5 }, health(1, { batteryPct: 140 }), health(1, { boot: 'x'.repeat(5000) }), { ...health(1), surprise: true }];
    for (const payload of bad) {
      const notice = nextMessage(c, 'devices/pump-1/errors');
      await send(c, 'devices/pump-1/health', payload);
      assert.ok(['malformed_json', 'invalid', 'too_large'].includes((await notice).reason), JSON.stringify(payload).slice(0, 40));
    }
    const refused = (await deviceMetric(s, 'health', 'invalid')) + (await deviceMetric(s, 'health', 'malformed_json')) + (await deviceMetric(s, 'health', 'too_large'));
    assert.equal(refused, bad.length);
    assert.equal(c.connected, true);
    assert.equal((await s.api('GET', '/readyz')).status, 200);
    assert.equal((await s.api('GET', '/api/v1/devices/pump-1/health', { token: admin })).body.history.length, 3);
  });

  it('keeps the registry on the firmware the device reports, writing only when it differs', async (t) => {
    const clock = new ManualClock(Date.now());
    const s = await startTestServer(t, { clock });
    const admin = await s.tokenFor(s.adminKey);
    const c = await connectDevice(s, await enrollDevice(s, admin, 'gw-1', { firmwareVersion: '2.0.0' }));
    t.after(() => c.end(true));
    await s.api('POST', '/api/v1/devices', { token: admin, body: { id: 'gw-2', firmwareVersion: '2.0.0' } });
    const ids = async (query: string) => (await s.api('GET', `/api/v1/devices?${query}`, { token: admin })).body.map((d: { id: string }) => d.id);
    const device = async () => (await s.api('GET', '/api/v1/devices/gw-1', { token: admin })).body;
    const report = async (extra: Record<string, unknown>) => {
      clock.advance(2000);
      await send(c, 'devices/gw-1/health', health(60, extra));
    };

    // The device rolled itself back to 1.4.0 (security version 4): the filters see it as it is.
    await report({ firmware: { version: '1.4.0', securityVersion: 4 } });
    assert.deepEqual(await ids('firmware=1.4.0'), ['gw-1']);
    assert.deepEqual(await ids('firmware=2.0.0'), ['gw-2']);
    assert.deepEqual(await ids('security=4'), ['gw-1']);
    assert.deepEqual(await ids('securityBelow=4'), ['gw-2'], 'gw-2 has no known security version');
    const written = await device();
    assert.deepEqual([written.firmwareVersion, written.securityVersion, written.updatedAt], ['1.4.0', 4, clock.now()]);

    await report({ firmware: { version: '1.4.0', securityVersion: 4 } });
    await report({ firmware: { version: '1.4.0' } });
    await report({});
    assert.equal((await device()).updatedAt, written.updatedAt, 'the same firmware (or none) again writes nothing');
    assert.equal((await device()).securityVersion, 4);

    await report({ firmware: { version: '1.5.0' } });
    assert.deepEqual([(await device()).firmwareVersion, (await device()).securityVersion], ['1.5.0', null], 'another version without its security version: unknown, not the old one');
    assert.deepEqual(await ids('securityBelow=4'), ['gw-1', 'gw-2']);
    assert.equal(await deviceMetric(s, 'health', 'stored'), 5);
  });

  it('stores each event once and lists them newest first', async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    const c = await connectDevice(s, await enrollDevice(s, admin, 'pump-1'));
    t.after(() => c.end(true));
    await send(c, 'devices/pump-1/events', { id: 'ev-1', type: 'boot', ts: 1, data: { reason: 'power_on' } });
    await send(c, 'devices/pump-1/events', { id: 'ev-2', type: 'crash', ts: 2, data: { signal: 'SIGSEGV' } });
    await send(c, 'devices/pump-1/events', { id: 'ev-1', type: 'boot', ts: 1, data: { reason: 'power_on' } });
    await send(c, 'devices/pump-1/events', { type: 'no-id', ts: 3 });
    const events = (await s.api('GET', '/api/v1/devices/pump-1/events', { token: admin })).body;
    assert.deepEqual(events.map((e: { id: string }) => e.id).sort(), ['ev-1', 'ev-2']);
    assert.deepEqual((await s.api('GET', '/api/v1/devices/pump-1/events?type=crash', { token: admin })).body[0].data, { signal: 'SIGSEGV' });
    assert.deepEqual([await deviceMetric(s, 'events', 'stored'), await deviceMetric(s, 'events', 'duplicate'), await deviceMetric(s, 'events', 'invalid')], [2, 1, 1]);
  });

  it('streams logs only inside a requested window, into a bounded ring and to live readers', async (t) => {
    const s = await startTestServer(t, { config: { logs: { ringEntries: 10, maxStreams: 1 } } });
    const admin = await s.tokenFor(s.adminKey);
    const c = await connectDevice(s, await enrollDevice(s, admin, 'pump-1'));
    t.after(() => c.end(true));
    await s.api('POST', '/api/v1/devices', { token: admin, body: { id: 'pump-2' } });
    const entry = (i: number, level = 'info') => ({ ts: Date.now(), level, msg: `line ${i}` });
    await send(c, 'devices/pump-1/logs', { entries: [entry(0)] });
    assert.equal(await deviceMetric(s, 'logs', 'not_requested'), 1, 'unrequested logs are dropped and counted');

    await c.subscribeAsync('devices/pump-1/commands/+', { qos: 1 });
    const cmd = nextMessage(c, 'devices/pump-1/commands/logs.stream');
    const started = await s.api('POST', '/api/v1/devices/pump-1/logs/stream', { token: admin, body: { level: 'info', durationS: 60, sample: 0.5 } });
    assert.equal(started.status, 201, started.text);
    assert.equal(started.body.stream.streaming, true);
    assert.deepEqual((await cmd).params, { level: 'info', durationS: 60, sample: 0.5 });
    const busy = await s.api('POST', '/api/v1/devices/pump-2/logs/stream', { token: admin, body: { level: 'info', durationS: 60 } });
    assert.equal(busy.status, 409, 'logs.maxStreams');

    const live = await fetch(`${s.url}/api/v1/devices/pump-1/logs/live?level=warn`, { headers: { authorization: `Bearer ${admin}` } });
    assert.equal(live.status, 200);
    const reader = live.body?.getReader();
    let text = '';
    const readUntil = async (needle: string) => {
      while (!text.includes(needle)) {
        const r = await reader?.read();
        text += new TextDecoder().decode(r?.value);
      }
    };
    await readUntil('event: ready');
    await send(c, 'devices/pump-1/logs', { entries: Array.from({ length: 12 }, (_, i) => entry(i + 1, i === 11 ? 'error' : 'info')), dropped: 4 });
    await readUntil('line 12');
    assert.match(text, /event: log\nid: 12|id: 12\nevent: log/);
    assert.doesNotMatch(text, /line 11"/, 'the live reader asked for warn and above');
    await reader?.cancel();

    const logs = (await s.api('GET', '/api/v1/devices/pump-1/logs', { token: admin })).body;
    assert.equal(logs.entries.length, 10, 'the ring keeps logs.ringEntries');
    assert.deepEqual([logs.entries[0].msg, logs.entries[9].msg], ['line 3', 'line 12']);
    assert.deepEqual([logs.stream.received, logs.stream.dropped], [12, 6]);
    const after = (await s.api('GET', '/api/v1/devices/pump-1/logs?after=10&level=error', { token: admin })).body;
    assert.deepEqual(
      after.entries.map((e: { seq: number }) => e.seq),
      [12],
    );
    await send(c, 'devices/pump-1/logs', { entries: Array.from({ length: 201 }, (_, i) => entry(i)) });
    assert.equal(await deviceMetric(s, 'logs', 'invalid'), 1, 'more than logBatchMaxEntries');
  });
});
