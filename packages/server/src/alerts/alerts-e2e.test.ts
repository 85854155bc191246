import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import { closed, connectDevice, enrollDevice } from '../testing/devices.js';
import { eventually } from '../testing/eventually.js';
import type { TestServer } from '../testing/harness.js';
import { env, setup } from '../testing/telemetry.js';
import { type ReceivedDelivery, type WebhookReceiver, startReceiver } from '../testing/webhook-receiver.js';
import { verifySignature } from '../webhooks/index.js';

/**
 * A notification receiver's outage: short in `npm test`, BULWARK_TEST_ALERT_OUTAGE_MS=30000
 * in `npm run test:long`.
 */
const OUTAGE_MS = Number(process.env.BULWARK_TEST_ALERT_OUTAGE_MS ?? 1500);
/** Devices cut off together: 20 in `npm test`, BULWARK_TEST_INCIDENT_DEVICES=200 in `npm run test:long`. */
const INCIDENT_DEVICES = Number(process.env.BULWARK_TEST_INCIDENT_DEVICES ?? 20);

/** Notifications retried every 100-500 ms; the built-in offline rule at 1 s. */
const config = {
  webhooks: { allowHttp: true, allowPrivateTargets: true },
  alerts: { notifyPollIntervalMs: 100, retryBaseMs: 100, retryMaxMs: 500, offlineAfterMs: 1000, groupWaitMs: 200, groupMinAlerts: 5 },
};

interface Note {
  event: string;
  alert: { id: string; type: string; deviceId: string; state: string; summary: string };
  incident?: { id: string; alerts: number };
  runbook: string;
  next: string;
  text: string;
}
/** The notifications taken, each with the POST that carried it and its id (a batch's carry theirs in `delivery`). */
const notes = (r: WebhookReceiver): { note: Note; d: ReceivedDelivery; id: string }[] =>
  r.received
    .filter((d) => d.status < 300)
    .flatMap((d): { note: Note; d: ReceivedDelivery; id: string }[] => {
      const body = JSON.parse(d.raw) as Note & { notifications?: (Note & { delivery: string })[] };
      if (body.event === 'batch') return (body.notifications ?? []).map((note) => ({ note, d, id: note.delivery }));
      return [{ note: body, d, id: String(d.headers['bulwark-delivery-id']) }];
    });

async function addChannel(s: TestServer, admin: string, receiver: WebhookReceiver, batch = false): Promise<string> {
  const res = await s.api('POST', '/api/v1/alerts/channels', { token: admin, body: { name: 'on-call', url: receiver.url, ...(batch ? { batch } : {}) } });
  assert.equal(res.status, 201, res.text);
  return (res.body as { secret: string }).secret;
}

/** Publishes readings of temp_c, one every `gapMs` of real time (the rule's duration is real time here). */
async function temps(client: MqttClient, prefix: string, values: readonly number[], gapMs = 0): Promise<void> {
  for (const [i, v] of values.entries()) {
    if (i > 0 && gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
    await client.publishAsync('devices/sensor-1/telemetry', env(`${prefix}-${i}`, { temp_c: v }), { qos: 1 });
  }
}

const openAlerts = async (s: TestServer, admin: string, query = 'state=open') => (await s.api('GET', `/api/v1/alerts?${query}`, { token: admin })).body as { id: string; type: string; state: string; silenced: boolean; ruleId: string }[];

describe('alerts end to end: a real device over MQTT, a real webhook receiver', () => {
  it('a threshold held for its duration fires once and resolves once (with hysteresis); notifications are signed and carry the runbook and next step', { timeout: 60_000 }, async (t) => {
    const receiver = await startReceiver(t);
    const { s, admin, client } = await setup(t, { config });
    const secret = await addChannel(s, admin, receiver);
    const rule = await s.api('POST', '/api/v1/alerts/rules', {
      token: admin,
      body: { name: 'Too hot', severity: 'critical', scope: { schemas: ['env-sensor@1'] }, condition: { kind: 'threshold', field: 'temp_c', op: '>', value: 80, for: '1s', hysteresis: 2 } },
    });
    assert.equal(rule.status, 201, rule.text);

    // Past 80 for over a second, reading after reading: one alert, not one per reading.
    await temps(client, 'hot', [85, 86, 87, 88, 89, 90], 250);
    const [fired] = await eventually(
      () => openAlerts(s, admin),
      (a) => a.length === 1,
    );
    assert.equal(fired?.type, 'threshold');
    await temps(client, 'hot-more', [91, 92]);
    // Back under 80 but within the hysteresis (78): still firing; under 78: resolved.
    await temps(client, 'cooling', [79]);
    assert.equal((await openAlerts(s, admin)).length, 1);
    await temps(client, 'cool', [70, 71]);
    await eventually(
      () => openAlerts(s, admin),
      (a) => a.length === 0,
    );

    const got = await eventually(
      async () => notes(receiver),
      (n) => n.length >= 2,
    );
    await new Promise((r) => setTimeout(r, 300)); // nothing more comes
    assert.deepEqual(
      notes(receiver).map((n) => n.note.event),
      ['alert.fired', 'alert.resolved'],
    );
    const first = got[0] as { note: Note; d: ReceivedDelivery };
    assert.equal(first.note.alert.id, fired?.id);
    assert.equal(first.note.runbook, 'docs/runbooks/threshold.md');
    assert.match(first.note.text, /^CRITICAL Too hot on sensor-1: temp_c \d+ > 80 for \d+(\.\d+)?s\. Next: /);
    assert.ok(first.note.next.length > 20);
    for (const { d } of got) assert.equal(verifySignature(secret, String(d.headers['bulwark-signature']), d.raw, Date.now()).ok, true);

    const audit = (await s.api('GET', '/api/v1/audit?limit=200', { token: admin })).body as { action: string; target: string }[];
    assert.deepEqual(
      audit
        .filter((e) => e.target === fired?.id)
        .map((e) => e.action)
        .sort(),
      ['alert.fire', 'alert.resolve'],
    );
  });

  for (const batch of [false, true])
    it(`a receiver that is down for ${OUTAGE_MS} ms still gets every notification once it recovers, in order per alert${batch ? ' (a batching channel: several in one signed POST)' : ''}`, { timeout: OUTAGE_MS + 60_000 }, async (t) => {
      const receiver = await startReceiver(t);
      const { s, admin, client } = await setup(t, { config });
      const secret = await addChannel(s, admin, receiver, batch);
      await s.api('POST', '/api/v1/alerts/rules', { token: admin, body: { name: 'Hot now', condition: { kind: 'threshold', field: 'temp_c', op: '>=', value: 100 } } });
      receiver.answer(503);
      // Three alerts fire and resolve during the outage: six notifications wait.
      for (let i = 0; i < 3; i += 1) {
        await temps(client, `spike-${i}`, [101]);
        await eventually(
          () => openAlerts(s, admin),
          (a) => a.length === 1,
        );
        await temps(client, `calm-${i}`, [20]);
        await eventually(
          () => openAlerts(s, admin),
          (a) => a.length === 0,
        );
      }
      await eventually(
        async () => receiver.received.length,
        (n) => n >= 2,
      );
      await new Promise((r) => setTimeout(r, OUTAGE_MS));
      receiver.answer(200);
      const delivered = await eventually(
        async () => notes(receiver),
        (n) => n.length >= 6,
        30_000,
      );
      assert.equal(new Set(delivered.map((n) => n.id)).size, 6, 'each notification taken once');
      for (const { d } of delivered) assert.equal(verifySignature(secret, String(d.headers['bulwark-signature']), d.raw, Date.now()).ok, true);
      // A batching channel got what waited in fewer POSTs than notifications.
      if (batch) assert.ok(new Set(delivered.map((n) => n.d)).size < 6, 'batched');
      // In order per alert: each one's "fired" before its "resolved".
      const byAlert = new Map<string, string[]>();
      for (const n of delivered) byAlert.set(n.note.alert.id, [...(byAlert.get(n.note.alert.id) ?? []), n.note.event]);
      assert.equal(byAlert.size, 3);
      for (const events of byAlert.values()) assert.deepEqual(events, ['alert.fired', 'alert.resolved']);
      assert.ok(
        receiver.received.some((d) => d.status === 503),
        'the outage was seen',
      );
    });

  it('a device gone for longer than the built-in offline duration fires "offline", resolves on reconnect; a silence holds notifications back until it expires', { timeout: 60_000 }, async (t) => {
    const receiver = await startReceiver(t);
    const { s, admin, client, device } = await setup(t, { config });
    await addChannel(s, admin, receiver);
    client.end(true);
    await closed(client);
    const [offline] = await eventually(
      () => openAlerts(s, admin),
      (a) => a.length === 1,
    );
    assert.equal(offline?.ruleId, 'builtin-offline');
    const again = await connectDevice(s, device);
    await eventually(
      () => openAlerts(s, admin),
      (a) => a.length === 0,
    );
    await eventually(
      async () => notes(receiver),
      (n) => n.length === 2,
    );
    assert.equal(notes(receiver)[0]?.note.runbook, 'docs/runbooks/offline.md');

    // Silenced for 1.5 s: the alert is stored and shown, not notified.
    const silence = await s.api('POST', '/api/v1/alerts/silences', { token: admin, body: { ruleId: 'builtin-offline', deviceId: 'sensor-1', reason: 'site maintenance', duration: 1500 } });
    assert.equal(silence.status, 201, silence.text);
    const expiresAt = (silence.body as { expiresAt: number }).expiresAt;
    again.end(true);
    await closed(again);
    const [held] = await eventually(
      () => openAlerts(s, admin),
      (a) => a.length === 1,
    );
    assert.equal(held?.silenced, true);
    const third = await connectDevice(s, device);
    await eventually(
      () => openAlerts(s, admin),
      (a) => a.length === 0,
    );
    assert.equal(notes(receiver).length, 2, 'nothing sent while silenced');

    // Expired: the next one is notified.
    await new Promise((r) => setTimeout(r, Math.max(0, expiresAt - Date.now() + 50)));
    third.end(true);
    await closed(third);
    await eventually(
      async () => notes(receiver),
      (n) => n.length === 3,
    );
    assert.equal(notes(receiver)[2]?.note.event, 'alert.fired');
  });

  it('refuses rules with unknown schemas or fields, invalid durations or operators, naming each path and reason', async (t) => {
    const { s, admin } = await setup(t, { config });
    const refused = async (body: unknown) => {
      const res = await s.api('POST', '/api/v1/alerts/rules', { token: admin, body });
      assert.equal(res.status, 400, res.text);
      return (res.body as { error: { details: { problems: { path: string; reason: string }[] } } }).error.details.problems.map((p) => p.path);
    };
    assert.deepEqual(await refused({ name: 'x', scope: { schemas: ['nope@1'] }, condition: { kind: 'threshold', field: 'temp_c', op: '>', value: 1 } }), ['scope.schemas[0]']);
    assert.deepEqual(await refused({ name: 'x', scope: { schemas: ['env-sensor@1'] }, condition: { kind: 'threshold', field: 'pressure', op: '>', value: 1 } }), ['condition.field']);
    assert.deepEqual(await refused({ name: 'x', scope: { schemas: ['env-sensor@1'] }, condition: { kind: 'threshold', field: 'note', op: '>', value: 1 } }), ['condition.field']);
    assert.deepEqual(await refused({ name: 'x', condition: { kind: 'threshold', field: 'temp_c', op: '=>', value: 1, for: '5 minutes' } }), ['condition.op', 'condition.for']);
    assert.deepEqual(await refused({ name: 'x', condition: { kind: 'offline', for: '-1m' } }), ['condition.for']);
    assert.deepEqual(await refused({ name: 'x', condition: { kind: 'sometimes' } }), ['condition.kind']);
    assert.deepEqual(await refused({ name: 'x', condition: { kind: 'rate', field: 'temp_c', maxPerMinute: 5, window: '1m' } }), ['condition.window']);
    // The built-in rule can be changed and disabled, not deleted.
    assert.equal((await s.api('PATCH', '/api/v1/alerts/rules/builtin-offline', { token: admin, body: { condition: { kind: 'offline', for: '10m' } } })).status, 200);
    assert.equal((await s.api('DELETE', '/api/v1/alerts/rules/builtin-offline', { token: admin })).status, 409);
  });

  it(`${INCIDENT_DEVICES} devices cut off together make one incident: one notification when it opens, one when the last device is back`, { timeout: 120_000 + INCIDENT_DEVICES * 500 }, async (t) => {
    const receiver = await startReceiver(t);
    const { s, admin, client } = await setup(t, { config });
    await addChannel(s, admin, receiver);
    const devices = await Promise.all(Array.from({ length: INCIDENT_DEVICES }, (_, i) => enrollDevice(s, admin, `site7-${i}`)));
    const clients = await Promise.all(devices.map((d) => connectDevice(s, d)));
    t.after(() => clients.forEach((c) => c.end(true)));
    await Promise.all(
      clients.map(async (c) => {
        c.end(true);
        await closed(c);
      }),
    );
    const [incident] = await eventually(
      async () => (await s.api('GET', '/api/v1/alerts/incidents?open=true', { token: admin })).body as { id: string; alerts: number }[],
      (list) => list.length === 1 && list[0]?.alerts === INCIDENT_DEVICES,
      30_000,
    );
    const open = await openAlerts(s, admin, 'state=open&limit=1000');
    assert.equal(open.filter((a) => a.ruleId === 'builtin-offline').length, INCIDENT_DEVICES);
    await eventually(
      async () => notes(receiver),
      (n) => n.length >= 1,
    );
    await new Promise((r) => setTimeout(r, 500)); // nothing more comes
    assert.deepEqual(
      notes(receiver).map((n) => n.note.event),
      ['incident.opened'],
    );
    assert.equal(notes(receiver)[0]?.note.incident?.id, incident?.id);

    const back = await Promise.all(devices.map((d) => connectDevice(s, d)));
    t.after(() => back.forEach((c) => c.end(true)));
    await eventually(
      async () => notes(receiver),
      (n) => n.length >= 2,
      30_000,
    );
    assert.deepEqual(
      notes(receiver).map((n) => n.note.event),
      ['incident.opened', 'incident.resolved'],
    );
    assert.equal(client.connected, true, 'the device that stayed is not part of it');
  });

  it('built-in fleet-health rules: a device reporting a restart loop, and one whose messages keep going to the dead letters', { timeout: 60_000 }, async (t) => {
    const { s, admin, client } = await setup(t, { config: { ...config, health: { minIntervalMs: 0 } } });
    const health = { ts: Date.now(), boot: 'b7', uptimeS: 12, restartReason: 'watchdog', recentRestarts: 6, restartLoop: true, firmware: { version: '1.4.2', securityVersion: 3 } };
    await client.publishAsync('devices/sensor-1/health', JSON.stringify(health), { qos: 1 });
    const [loop] = await eventually(
      () => openAlerts(s, admin),
      (a) => a.some((x) => x.ruleId === 'builtin-restart-loop'),
    );
    assert.equal(loop?.type, 'restart_loop');
    // Eleven refused messages within a minute: more than the built-in 10 a minute.
    for (let i = 0; i < 11; i += 1) await client.publishAsync('devices/sensor-1/telemetry', env(`bad-${i}`, { temp_c: 'hot' }), { qos: 1 });
    await eventually(
      () => openAlerts(s, admin),
      (a) => a.some((x) => x.ruleId === 'builtin-dead-letters'),
    );
    // The health score: 100 less 40 for the critical restart loop and 15 for the dead letters; the worst device first.
    const score = async () => ((await s.api('GET', '/api/v1/devices/sensor-1', { token: admin })).body as { healthScore: number }).healthScore;
    assert.equal(await score(), 45);
    const worst = (await s.api('GET', '/api/v1/devices?sort=health&limit=1', { token: admin })).body as { id: string; healthScore: number }[];
    assert.deepEqual(
      worst.map((d) => [d.id, d.healthScore]),
      [['sensor-1', 45]],
    );
    await client.publishAsync('devices/sensor-1/health', JSON.stringify({ ...health, ts: Date.now(), restartLoop: false, recentRestarts: 0 }), { qos: 1 });
    await eventually(
      () => openAlerts(s, admin),
      (a) => !a.some((x) => x.ruleId === 'builtin-restart-loop'),
    );
    assert.equal(await score(), 85);
  });
});
