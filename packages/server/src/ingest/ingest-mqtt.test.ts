import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import { ManualClock } from '@bulwark/core';
import { connectDevice, enrollDevice } from '../testing/devices.js';
import { env, metric, readings, setup, sseReader } from '../testing/telemetry.js';
import { startTestServer } from '../testing/harness.js';

describe('telemetry over MQTT through the pipeline', () => {
  it('stores a reading before the PUBACK, and stores a repeated message once', async (t) => {
    const { s, admin, device, client } = await setup(t);
    await client.publishAsync('devices/sensor-1/telemetry', env('m-1', { temp_c: 21.5 }), { qos: 1 });
    assert.deepEqual(
      (await readings(s, admin)).map((r) => r.data),
      [{ temp_c: 21.5 }],
      'stored by the time the PUBACK arrived',
    );
    await client.publishAsync('devices/sensor-1/telemetry', env('m-1', { temp_c: 21.5 }), { qos: 1 });
    const second: MqttClient = await connectDevice(s, device);
    t.after(() => second.end(true));
    await second.publishAsync('devices/sensor-1/telemetry/fast', env('m-1', { temp_c: 21.5 }), { qos: 1 });
    assert.equal((await readings(s, admin)).length, 1);
    assert.equal(await metric(s, /bulwark_ingest_messages_total\{transport="mqtt",outcome="duplicate"\} (\d+)/), 2);
    assert.equal(await metric(s, /bulwark_ingest_messages_total\{transport="mqtt",outcome="stored"\} (\d+)/), 1);
  });

  it('sheds QoS 0 messages past the pending bound, counted, while a QoS 1 message still waits and is stored', async (t) => {
    const config = { ingest: { maxPendingMessages: 100, batchMaxDelayMs: 1000, batchMaxItems: 10_000 }, mqtt: { publishRatePerSecond: 10_000, publishBurst: 10_000 } };
    const { s, admin, client } = await setup(t, { config });
    for (let i = 0; i < 300; i += 1) client.publish('devices/sensor-1/telemetry', env(`q0-${i}`, { temp_c: 20 }), { qos: 0 });
    await client.publishAsync('devices/sensor-1/telemetry', env('q1-marker', { temp_c: 21 }), { qos: 1 });
    const stored = await metric(s, /bulwark_ingest_messages_total\{transport="mqtt",outcome="stored"\} (\d+)/);
    const shed = await metric(s, /bulwark_ingest_messages_total\{transport="mqtt",outcome="shed"\} (\d+)/);
    const rows = await readings(s, admin);
    assert.ok(
      rows.some((r) => r.msgId === 'q1-marker'),
      'the QoS 1 message is never shed',
    );
    assert.ok(shed >= 100, `most of the flood past the bound is shed (${shed})`);
    assert.equal(stored + shed, 301, 'every message is either stored or counted as shed');
    assert.equal(rows.length, stored);
  });

  it('sends each invalid message of a mixed stream to the dead-letter store with its reason, and tells the device', async (t) => {
    const { s, admin, client } = await setup(t);
    await client.subscribeAsync('devices/sensor-1/errors', { qos: 1 });
    const notices: { reason: string }[] = [];
    let allNoticed: () => void = () => undefined;
    const fiveNotices = new Promise<void>((resolve) => {
      allNoticed = resolve;
    });
    client.on('message', (topic, payload) => {
      if (topic.endsWith('/errors')) notices.push(JSON.parse(payload.toString()));
      if (notices.length === 5) allNoticed();
    });
    const bad = new Map<number, [Buffer | string, string]>([
      [4, [env('b-4', { temp_c: 'warm' }), 'schema_violation']],
      [13, [env('b-13', { temp_c: 300 }), 'schema_violation']],
      [22, ['{"id": "b-22", "schema": "env-sensor@1", "data": {"temp_c": NaN}}', 'malformed_json']],
      [31, [env('b-31', { temp_c: 1 }, { schema: 'missing@9' }), 'unknown_schema']],
      [40, [Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), 'invalid_utf8']],
    ]);
    for (let i = 0; i < 50; i += 1) {
      const [payload] = bad.get(i) ?? [env(`g-${i}`, { temp_c: i }, { seq: i })];
      await client.publishAsync('devices/sensor-1/telemetry', payload, { qos: 1 });
    }
    assert.equal((await readings(s, admin)).length, 45);
    const letters = (await s.api('GET', '/api/v1/dead-letters?device=sensor-1', { token: admin })).body as { reason: string; msgId: string | null; problems: { path: string }[] }[];
    assert.equal(letters.length, 5);
    assert.deepEqual(letters.map((l) => l.reason).sort(), [...bad.values()].map(([, r]) => r).sort());
    assert.deepEqual(
      letters.find((l) => l.msgId === 'b-4')?.problems.map((p) => p.path),
      ['/temp_c'],
    );
    const filtered = (await s.api('GET', '/api/v1/dead-letters?reason=schema_violation', { token: admin })).body;
    assert.equal(filtered.length, 2);
    await fiveNotices;
    assert.deepEqual(notices.map((n) => n.reason).sort(), [...bad.values()].map(([, r]) => r).sort());
  });

  it('survives hostile payloads without a crash or prototype pollution', async (t) => {
    const { s, admin, client } = await setup(t);
    const deep = `${'{"a":'.repeat(40)}1${'}'.repeat(40)}`;
    const hostile: [string, string][] = [
      [JSON.stringify({ id: 'h1', schema: 'env-sensor@1', data: JSON.parse(deep) }), 'too_deep'],
      ['{"id":"h2","schema":"env-sensor@1","data":{"temp_c":1,"__proto__":{"polluted":true}}}', 'forbidden_key'],
      // Text no store can hold: PostgreSQL refuses NUL and unpaired surrogates, so they are refused before the acknowledgement.
      ['{"id":"h5","schema":"env-sensor@1","data":{"temp_c":1,"note":"a\\u0000b"}}', 'forbidden_character'],
      ['{"id":"h6","schema":"env-sensor@1","data":{"temp_c":1,"\\ud800":2}}', 'forbidden_character'],
      [JSON.stringify({ id: 'h3', schema: 'env-sensor@1', data: { temp_c: 1, note: 'x'.repeat(100_000) } }), 'schema_violation'],
      [JSON.stringify({ id: 'h4', schema: 'env-sensor@1', data: [1, 2] }), 'bad_envelope'],
      [JSON.stringify({ id: 7, seq: -1, schema: 'env-sensor@1', data: {} }), 'bad_envelope'],
      ['null', 'bad_envelope'],
      ['', 'malformed_json'],
    ];
    for (const [payload] of hostile) await client.publishAsync('devices/sensor-1/telemetry', payload, { qos: 1 });
    const letters = (await s.api('GET', '/api/v1/dead-letters?limit=100', { token: admin })).body as { reason: string }[];
    assert.deepEqual(letters.map((l) => l.reason).sort(), hostile.map(([, r]) => r).sort());
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal((await s.api('GET', '/healthz')).status, 200);
  });

  it('places readings in time when the device clock is wrong, and keeps the skew', async (t) => {
    const clock = new ManualClock(Date.now());
    const { s, admin, client } = await setup(t, { clock });
    const t0 = clock.now();
    const send = (id: string, extra: Record<string, unknown>) => client.publishAsync('devices/sensor-1/telemetry', env(id, { temp_c: 1 }, extra), { qos: 1 });
    // Rebooted without time sync: the wall clock says 1970; monotonic time and the boot id are right.
    await send('t-1', { ts: 5_000, mono: 60_000, boot: 'b1' });
    clock.advance(10_000);
    await send('t-2', { ts: 15_000, mono: 70_000, boot: 'b1' });
    clock.advance(5_000);
    await send('t-3', { ts: 17_000, mono: 72_000, boot: 'b1' }); // buffered for 3 s before it was sent
    await send('t-4', { ts: t0 + 3_600_000 }); // a plausible clock, an hour fast
    const byId = new Map((await readings(s, admin)).map((r) => [r.msgId, r]));
    assert.equal(byId.get('t-1')?.ts, t0, 'placed at boot start + monotonic time');
    assert.equal(byId.get('t-2')?.ts, t0 + 10_000, 'the monotonic interval is kept');
    assert.equal(byId.get('t-3')?.ts, t0 + 12_000, 'a buffered reading goes back to when it was taken');
    assert.equal(byId.get('t-3')?.receivedAt, t0 + 15_000);
    assert.equal(byId.get('t-1')?.deviceTs, 5_000, 'the device time is kept as sent');
    assert.equal(byId.get('t-4')?.ts, t0 + 3_600_000, 'a plausible clock is believed');
    assert.equal(byId.get('t-4')?.skewMs, 15_000 - 3_600_000, 'and its skew recorded');
    assert.equal(await metric(s, /bulwark_ingest_implausible_clock_total (\d+)/), 3);
    const skewed = await s.api('GET', '/api/v1/telemetry/clock-skew', { token: admin });
    assert.deepEqual(
      skewed.body.map((d: { deviceId: string; skewMs: number }) => [d.deviceId, d.skewMs]),
      [['sensor-1', 15_000 - 3_600_000]],
      'the device with the fast clock is flagged',
    );
    assert.equal(await metric(s, /bulwark_ingest_skewed_clocks_total (\d+)/), 1);
  });

  it('replays a dead letter after the fix, and a second replay stores nothing more', async (t) => {
    const { s, admin, client } = await setup(t);
    await client.publishAsync('devices/sensor-1/telemetry', JSON.stringify({ id: 'r-1', schema: 'power@1', data: { watts: 12 } }), { qos: 1 });
    const [letter] = (await s.api('GET', '/api/v1/dead-letters?reason=unknown_schema', { token: admin })).body as { id: string }[];
    assert.ok(letter);
    const early = await s.api('POST', `/api/v1/dead-letters/${letter.id}/replay`, { token: admin });
    assert.equal(early.body.status, 'dead_lettered', 'still no schema');
    await s.api('POST', '/api/v1/schemas', { token: admin, body: { $id: 'power@1', type: 'object', properties: { watts: { type: 'number', 'x-unit': 'W' } } } });
    assert.equal((await s.api('POST', `/api/v1/dead-letters/${letter.id}/replay`, { token: admin })).body.status, 'stored');
    assert.equal((await s.api('POST', `/api/v1/dead-letters/${letter.id}/replay`, { token: admin })).body.status, 'duplicate');
    assert.equal((await readings(s, admin)).length, 1);
    const shown = (await s.api('GET', `/api/v1/dead-letters/${letter.id}`, { token: admin })).body;
    assert.equal(shown.replayResult, 'duplicate');
  });
});

describe('time sync', () => {
  it('answers NTP-style time requests over MQTT and HTTP', async (t) => {
    const clock = new ManualClock(Date.now());
    const s = await startTestServer(t, { clock });
    const admin = await s.tokenFor(s.adminKey);
    const client = await connectDevice(s, await enrollDevice(s, admin, 'clock-1'));
    t.after(() => client.end(true));
    await client.subscribeAsync('devices/clock-1/time/reply', { qos: 0 });
    const reply = new Promise<{ t0: number; t1: number; t2: number }>((resolve) => client.once('message', (_topic, p) => resolve(JSON.parse(p.toString()))));
    await client.publishAsync('devices/clock-1/time', JSON.stringify({ t0: 1000 }), { qos: 1 });
    assert.deepEqual(await reply, { t0: 1000, t1: clock.now(), t2: clock.now() });
    const http = await s.api('GET', '/api/v1/time?t0=42');
    assert.deepEqual(http.body, { t0: 42, t1: clock.now(), t2: clock.now() });
  });
});

describe('the live stream', () => {
  it('delivers stored readings of one device to a Server-Sent Events subscriber, and only those', async (t) => {
    const { s, admin, client } = await setup(t);
    const other = await enrollDevice(s, admin, 'sensor-2');
    const otherClient = await connectDevice(s, other);
    t.after(() => otherClient.end(true));
    const abort = new AbortController();
    t.after(() => abort.abort());
    const res = await fetch(`${s.url}/api/v1/devices/sensor-1/telemetry/live`, { headers: { authorization: `Bearer ${admin}` }, signal: abort.signal });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
    const nextEvent = sseReader(res);
    assert.equal((await nextEvent()).event, 'ready');
    await otherClient.publishAsync('devices/sensor-2/telemetry', env('o-1', { temp_c: 99 }), { qos: 1 });
    for (let i = 0; i < 3; i += 1) await client.publishAsync('devices/sensor-1/telemetry', env(`l-${i}`, { temp_c: i }, { seq: i }), { qos: 1 });
    const got = [await nextEvent(), await nextEvent(), await nextEvent()];
    assert.deepEqual(
      got.map((e) => [e.event, e.data.msgId, e.data.data]),
      [0, 1, 2].map((i) => ['reading', `l-${i}`, { temp_c: i }]),
    );
    const unauthorised = await fetch(`${s.url}/api/v1/devices/sensor-1/telemetry/live`);
    assert.equal(unauthorised.status, 401);
  });
});

describe('live streams for the fleet', () => {
  it('streams readings over a WebSocket, filtered by device, and refuses a socket without a token', async (t) => {
    const { s, admin, client } = await setup(t);
    const { WebSocket } = await import('ws');
    const wsUrl = `${s.url.replace('http', 'ws')}/api/v1/telemetry/ws?device=sensor-1`;
    const refused = new WebSocket(wsUrl);
    refused.on('error', () => undefined); // terminating a refused handshake reports an error; that is the point
    const refusal = await new Promise<number>((resolve) => refused.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
    assert.equal(refusal, 401);
    refused.terminate();
    const socket = new WebSocket(wsUrl, { headers: { authorization: `Bearer ${admin}` } });
    t.after(() => socket.terminate());
    const messages: Record<string, unknown>[] = [];
    let gotTwo: () => void = () => undefined;
    const two = new Promise<void>((resolve) => {
      gotTwo = resolve;
    });
    const ready = new Promise<void>((resolve) =>
      socket.on('message', (raw) => {
        const m = JSON.parse(String(raw)) as Record<string, unknown>;
        if (m.ready) return resolve();
        messages.push(m);
        if (messages.length === 2) gotTwo();
      }),
    );
    await ready;
    await client.publishAsync('devices/sensor-1/telemetry', env('w-1', { temp_c: 1 }), { qos: 1 });
    await client.publishAsync('devices/sensor-1/telemetry', env('w-2', { temp_c: 2 }), { qos: 1 });
    await two;
    assert.deepEqual(
      messages.map((m) => [m.msgId, m.data]),
      [
        ['w-1', { temp_c: 1 }],
        ['w-2', { temp_c: 2 }],
      ],
    );
  });
});
