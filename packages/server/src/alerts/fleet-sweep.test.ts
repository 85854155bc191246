import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '@bulwark/core';
import { send } from '../testing/device-messages.js';
import { connectDevice, enrollDevice } from '../testing/devices.js';
import { eventually } from '../testing/eventually.js';
import type { TestServer } from '../testing/harness.js';
import { env, setup } from '../testing/telemetry.js';

const DAY = 86_400_000;

interface AlertView {
  id: string;
  ruleId: string;
  deviceId: string;
  type: string;
  state: string;
  summary: string;
  details: Record<string, unknown>;
}
/** The rule's alerts in a state ('' for every state). */
const alertsOf = async (s: TestServer, admin: string, ruleId: string, state = 'open') => (await s.api('GET', `/api/v1/alerts?${state ? `state=${state}&` : ''}ruleId=${ruleId}`, { token: admin })).body as AlertView[];

/** The fleet sweep every second of real time; the store's times come from the manual clock. */
const config = { alerts: { sweepIntervalMs: 1000 }, twin: { driftThresholdMs: 60_000 } };

describe('fleet sweep: twin drift, certificate expiry and cohort outliers', () => {
  it("a device out of sync past the rule's duration fires twin_drift once; its report of the desired configuration resolves it", { timeout: 60_000 }, async (t) => {
    const clock = new ManualClock(Date.now());
    const { s, admin, client } = await setup(t, { clock, config });
    const set = await s.api('PUT', '/api/v1/devices/sensor-1/twin/desired', { token: admin, body: { config: { rateS: 5 } } });
    assert.equal(set.status, 200, set.text);

    // Out of sync, but not for the rule's minute yet: nothing after a sweep.
    clock.advance(30_000);
    await s.server.alerts.sweep.sweep();
    assert.deepEqual(await alertsOf(s, admin, 'builtin-twin-drift'), []);

    clock.advance(31_000);
    const [fired] = await eventually(
      () => alertsOf(s, admin, 'builtin-twin-drift'),
      (a) => a.length === 1,
    );
    assert.equal(fired?.deviceId, 'sensor-1');
    assert.equal(fired?.type, 'twin_drift');
    assert.match(fired?.summary ?? '', /^configuration out of sync for 1\.0m \(desired version 1, reported none\)$/);
    // Later sweeps keep the one alert.
    await s.server.alerts.sweep.sweep();
    await s.server.alerts.sweep.sweep();
    assert.equal((await alertsOf(s, admin, 'builtin-twin-drift', '')).length, 1);

    await send(client, 'devices/sensor-1/twin/reported', { version: 1, status: 'applied', config: { rateS: 5 }, ts: clock.now() });
    await eventually(
      () => alertsOf(s, admin, 'builtin-twin-drift'),
      (a) => a.length === 0,
    );
    const [resolved] = await alertsOf(s, admin, 'builtin-twin-drift', 'resolved');
    assert.equal(resolved?.id, fired?.id);
  });

  it('a certificate ending within the window fires cert_expiry (ended: says so) and is in the expiry report; revoking it resolves; a narrower rule does not fire', { timeout: 60_000 }, async (t) => {
    const clock = new ManualClock(Date.now());
    const { s, admin: first } = await setup(t, { clock, config });
    let admin = first;
    const [cert] = (await s.api('GET', '/api/v1/devices/sensor-1/certificates', { token: admin })).body as { serial: string; notAfter: number }[];
    assert.ok(cert);
    await s.server.alerts.sweep.sweep();
    assert.deepEqual(await alertsOf(s, admin, 'builtin-cert-expiry'), [], 'a fresh certificate is far from its end');

    // 10 days before its end: within the built-in 30 days, outside a 7-day rule.
    const narrow = await s.api('POST', '/api/v1/alerts/rules', { token: admin, body: { name: 'Certificate ends this week', condition: { kind: 'cert_expiry', within: '7d' } } });
    assert.equal(narrow.status, 201, narrow.text);
    const narrowId = (narrow.body as { id: string }).id;
    clock.set(cert.notAfter - 10 * DAY);
    // Tokens are timed by the same clock.
    admin = await s.tokenFor(s.adminKey);
    const [fired] = await eventually(
      () => alertsOf(s, admin, 'builtin-cert-expiry'),
      (a) => a.length === 1,
    );
    assert.equal(fired?.deviceId, 'sensor-1');
    assert.equal(fired?.details.serial, cert.serial);
    assert.match(fired?.summary ?? '', /ends in 10\.0d \(window 30d\)$/);
    await s.server.alerts.sweep.sweep();
    assert.deepEqual(await alertsOf(s, admin, narrowId), []);
    // The same facts in the certificate-expiry report.
    const report = async (days: number) => (await s.api('GET', `/api/v1/certificates/expiring?days=${days}`, { token: admin })).body as { deviceId: string; serial: string; expired: boolean; msLeft: number }[];
    assert.deepEqual(
      (await report(30)).map((c) => [c.deviceId, c.serial, c.expired, c.msLeft]),
      [['sensor-1', cert.serial, false, 10 * DAY]],
    );
    assert.deepEqual(await report(7), []);

    // Past its end: the narrow rule fires and says it has ended.
    clock.set(cert.notAfter + 2 * DAY);
    admin = await s.tokenFor(s.adminKey);
    const [ended] = await eventually(
      () => alertsOf(s, admin, narrowId),
      (a) => a.length === 1,
    );
    assert.match(ended?.summary ?? '', /ended 2\.0d ago$/);
    assert.deepEqual(
      (await report(0)).map((c) => [c.expired, c.msLeft]),
      [[true, -2 * DAY]],
    );

    const revoked = await s.api('POST', `/api/v1/certificates/${cert.serial}/revoke`, { token: admin, body: { reason: 'expired' } });
    assert.ok(revoked.status < 300, revoked.text);
    await eventually(
      async () => [...(await alertsOf(s, admin, 'builtin-cert-expiry')), ...(await alertsOf(s, admin, narrowId))],
      (a) => a.length === 0,
    );
    assert.deepEqual(await report(365), [], 'a revoked certificate is in no report');
  });

  it("cohort: a device whose mean is far from its model's peers fires once; a looser rule resolves it; a device of another model is no peer", { timeout: 60_000 }, async (t) => {
    const { s, admin } = await setup(t, { config });
    // Six devices of model th-1 (one reading far off) and one of model th-2 far off on its own: too few peers to judge.
    const devices: [string, string, number][] = [
      ['th-a', 'th-1', 20.0],
      ['th-b', 'th-1', 20.5],
      ['th-c', 'th-1', 21.0],
      ['th-d', 'th-1', 19.5],
      ['th-e', 'th-1', 20.2],
      ['th-odd', 'th-1', 35],
      ['th-other', 'th-2', 90],
    ];
    for (const [id, model, value] of devices) {
      const client = await connectDevice(s, await enrollDevice(s, admin, id, { model }));
      t.after(() => client.end(true));
      for (let i = 0; i < 3; i += 1) await client.publishAsync(`devices/${id}/telemetry`, env(`${id}-${i}`, { temp_c: value + i * 0.01 }), { qos: 1 });
    }
    const created = await s.api('POST', '/api/v1/alerts/rules', {
      token: admin,
      body: { name: 'Far from its peers', scope: { schemas: ['env-sensor@1'] }, condition: { kind: 'cohort', field: 'temp_c', by: 'model', window: '10m', sigma: 6 } },
    });
    assert.equal(created.status, 201, created.text);
    const rule = created.body as { id: string; condition: Record<string, unknown> };
    assert.deepEqual(rule.condition, { kind: 'cohort', field: 'temp_c', by: 'model', window: '10m', sigma: 6, minPeers: 5 });

    const [fired] = await eventually(
      () => alertsOf(s, admin, rule.id),
      (a) => a.length === 1,
    );
    assert.equal(fired?.deviceId, 'th-odd');
    assert.equal(fired?.type, 'cohort');
    assert.match(fired?.summary ?? '', /^temp_c 35\.01 over 10m: \+\d+\.\dσ from the median 20\.\d+ of 6 peers .*\(model th-1\)$/);
    await s.server.alerts.sweep.sweep();
    assert.equal((await alertsOf(s, admin, rule.id, '')).length, 1, 'later sweeps keep the one alert');

    // Scoped to device groups: cohorts are made of the groups' devices only.
    const scoped: Record<string, string> = {};
    for (const [group, members] of [
      ['with-odd', ['th-a', 'th-b', 'th-c', 'th-d', 'th-odd']],
      ['calm', ['th-a', 'th-b', 'th-c', 'th-d', 'th-e']],
    ] as const) {
      assert.equal((await s.api('POST', '/api/v1/groups', { token: admin, body: { id: group, kind: 'static', members } })).status, 201);
      const r = await s.api('POST', '/api/v1/alerts/rules', { token: admin, body: { name: group, scope: { groups: [group] }, condition: { kind: 'cohort', field: 'temp_c', by: 'model', window: '10m', sigma: 6 } } });
      assert.equal(r.status, 201, r.text);
      scoped[group] = (r.body as { id: string }).id;
    }
    await s.server.alerts.sweep.sweep();
    const [inGroup] = await eventually(
      () => alertsOf(s, admin, scoped['with-odd'] as string),
      (a) => a.length === 1,
    );
    assert.match(inGroup?.summary ?? '', /of 5 peers .*\(model th-1\)$/);
    assert.deepEqual(await alertsOf(s, admin, scoped.calm as string, ''), [], 'no outlier among the calm ones');

    const loose = await s.api('PATCH', `/api/v1/alerts/rules/${rule.id}`, { token: admin, body: { condition: { ...rule.condition, sigma: 100 } } });
    assert.equal(loose.status, 200, loose.text);
    await eventually(
      () => alertsOf(s, admin, rule.id),
      (a) => a.length === 0,
    );
    assert.equal((await alertsOf(s, admin, rule.id, 'resolved'))[0]?.id, fired?.id);
  });

  it('refuses a certificate window past a year, a drift duration under a second and a cohort by anything but model or tag, with the path', async (t) => {
    const { s, admin } = await setup(t, { config });
    const wide = await s.api('POST', '/api/v1/alerts/rules', { token: admin, body: { name: 'x', condition: { kind: 'cert_expiry', within: '400d' } } });
    assert.equal(wide.status, 400);
    const message = (res: { body: unknown }) => (res.body as { error: { message: string } }).error.message;
    assert.match(message(wide), /condition\.within: "400d" is not a duration .*at most 365d/);
    const short = await s.api('POST', '/api/v1/alerts/rules', { token: admin, body: { name: 'x', condition: { kind: 'twin_drift', for: '10ms' } } });
    assert.equal(short.status, 400);
    assert.match(message(short), /condition\.for: must be at least 1s/);
    const cohort = await s.api('POST', '/api/v1/alerts/rules', { token: admin, body: { name: 'x', scope: { schemas: ['env-sensor@1'] }, condition: { kind: 'cohort', field: 'note', by: 'site', minPeers: 2 } } });
    assert.equal(cohort.status, 400);
    const paths = (cohort.body as { error: { details: { problems: { path: string }[] } } }).error.details.problems.map((p) => p.path).sort();
    assert.deepEqual(paths, ['condition.by', 'condition.minPeers']);
  });
});
