import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Alert, AlertRule, Grouping, Outgoing } from '../../alerts/index.js';
import { type MakeStore, T0 } from './principal-repository.contract.js';

const rule = (id: string): AlertRule => ({
  id, name: id, severity: 'critical', scope: { deviceIds: [], tags: [], models: [], groups: [], schemas: [] }, condition: { kind: 'offline', forMs: 60_000 },
  enabled: true, builtIn: false, createdBy: 'usr_1', createdAt: T0, updatedAt: T0,
});
const alert = (id: string, ruleId: string, deviceId: string, at = T0): Alert => ({
  id, ruleId, deviceId, type: 'offline', severity: 'critical', state: 'firing', summary: 'offline', details: { n: 1 }, firedAt: at,
  acknowledgedAt: null, acknowledgedBy: null, resolvedAt: null, silenced: false, incidentId: null,
});
const note = (id: string, event: Outgoing['event'] = 'fired'): Outgoing => ({ id, channelId: 'chan_1', event, body: `{"id":"${id}"}` });
const grouping = (incidentId: string, at = T0, minAlerts = 5): Grouping => ({
  windowMs: 60_000, minAlerts, sendAt: at + 1000, newIncidentId: incidentId, opened: (i) => [note(`open-${i.id}-${i.alerts}`, 'incident.opened')],
});

/** AlertRepository: one open alert per rule and device, transitions with their notifications in one transaction, incidents. */
export function describeAlertRepository(make: MakeStore): void {
  describe('AlertRepository contract', () => {
    it('fires once per rule and device while open, even when many try at once; a new one after it resolved', async (t) => {
      const { alerts } = await make(t);
      await alerts.insertRule(rule('r1'));
      const results = await Promise.all(Array.from({ length: 8 }, (_, i) => alerts.fire(alert(`a${i}`, 'r1', 'd1'), [note(`n${i}`)], T0, grouping(`inc${i}`))));
      assert.deepEqual(results.filter((r) => r === 'fired').length, 1);
      assert.deepEqual(results.filter((r) => r === 'open').length, 7);
      const open = await alerts.open('r1', 'd1');
      assert.ok(open);
      const pending = await alerts.undelivered(100);
      assert.equal(pending.length, 1, 'only the inserted alert wrote its notification');
      assert.equal(pending[0]?.nextAttemptAt, T0 + 1000, 'sent after the group wait');
      assert.equal(await alerts.resolve(open.id, T0 + 5, [note('r-1', 'resolved')], () => []), true);
      assert.equal(await alerts.resolve(open.id, T0 + 6, [note('r-2', 'resolved')], () => []), false, 'resolved once');
      assert.equal((await alerts.get(open.id))?.state, 'resolved');
      assert.equal(await alerts.fire(alert('b1', 'r1', 'd1', T0 + 10), [], T0 + 10, grouping('incX', T0 + 10)), 'fired');
      assert.deepEqual((await alerts.undelivered(100)).map((n) => n.event), ['fired', 'resolved']);
    });

    it('acknowledges a firing alert once; lists by state, device and rule, newest first', async (t) => {
      const { alerts } = await make(t);
      await alerts.fire(alert('a1', 'r1', 'd1', T0), [], T0, grouping('i1'));
      await alerts.fire(alert('a2', 'r1', 'd2', T0 + 1), [], T0 + 1, grouping('i2'));
      await alerts.fire(alert('a3', 'r2', 'd1', T0 + 2), [], T0 + 2, grouping('i3'));
      assert.equal(await alerts.acknowledge('a1', 'usr_1', T0 + 3), true);
      assert.equal(await alerts.acknowledge('a1', 'usr_1', T0 + 4), false);
      await alerts.resolve('a2', T0 + 5, [], () => []);
      assert.deepEqual((await alerts.list({ state: 'open', limit: 10 })).map((a) => a.id), ['a3', 'a1']);
      assert.deepEqual((await alerts.list({ state: 'acknowledged', limit: 10 })).map((a) => a.id), ['a1']);
      assert.deepEqual((await alerts.list({ state: 'resolved', limit: 10 })).map((a) => a.id), ['a2']);
      assert.deepEqual((await alerts.list({ deviceId: 'd1', limit: 10 })).map((a) => a.id), ['a3', 'a1']);
      assert.deepEqual((await alerts.list({ ruleId: 'r1', before: T0 + 1, limit: 10 })).map((a) => a.id), ['a1']);
      assert.equal(await alerts.countOpen(), 2);
      assert.deepEqual((await alerts.get('a1'))?.details, { n: 1 });
    });

    it('makes one incident of a rule\'s recent alerts: their unsent notifications are replaced by one; later ones join; the last resolve closes it', async (t) => {
      const { alerts } = await make(t);
      for (let i = 0; i < 4; i += 1) assert.equal(await alerts.fire(alert(`a${i}`, 'r1', `d${i}`), [note(`n${i}`)], T0, grouping(`inc${i}`)), 'fired');
      await alerts.fire(alert('other', 'r2', 'd0'), [note('n-other')], T0, grouping('incO'));
      assert.equal(await alerts.fire(alert('a4', 'r1', 'd4'), [note('n4')], T0, grouping('inc4')), 'grouped');
      assert.equal(await alerts.fire(alert('a5', 'r1', 'd5'), [note('n5')], T0, grouping('inc5')), 'grouped');
      const [incident] = await alerts.listIncidents({ open: true, limit: 10 });
      assert.equal(incident?.id, 'inc4');
      assert.equal(incident?.alerts, 6);
      assert.deepEqual((await alerts.undelivered(100)).map((n) => n.id).sort(), ['n-other', 'open-inc4-5']);
      for (let i = 0; i < 6; i += 1) {
        await alerts.resolve(`a${i}`, T0 + 10 + i, [note(`r${i}`, 'resolved')], (inc) => [note(`closed-${inc.id}`, 'incident.resolved')]);
      }
      assert.deepEqual((await alerts.undelivered(100)).map((n) => n.id).sort(), ['closed-inc4', 'n-other', 'open-inc4-5']);
      assert.deepEqual((await alerts.listIncidents({ open: true, limit: 10 })), []);
      assert.equal((await alerts.listIncidents({ open: false, limit: 10 }))[0]?.closedAt, T0 + 15);
    });

    it('keeps each device\'s health score: 100 less a penalty per open alert, worst first in the device list', async (t) => {
      const store = await make(t);
      const device = (id: string) => ({
        id, serial: null, model: null, hardwareRevision: null, firmwareVersion: null, securityVersion: null, owner: null, location: null, tags: [],
        state: 'active' as const, suspendedFrom: null, createdAt: T0, updatedAt: T0, healthScore: 100,
        connectivity: { online: false, onlineSince: null, lastSeenAt: null, connectCount: 0, lastDisconnectAt: null, lastDisconnectReason: null },
      });
      await store.devices.insertMany([device('d1'), device('d2'), device('d3')]);
      const { alerts } = store;
      await alerts.fire(alert('a1', 'r1', 'd1'), [], T0, grouping('i1'));
      await alerts.fire({ ...alert('a2', 'r2', 'd1'), severity: 'warning' }, [], T0, grouping('i2'));
      await alerts.fire({ ...alert('a3', 'r3', 'd1'), severity: 'critical' }, [], T0, grouping('i3'));
      await alerts.fire({ ...alert('a4', 'r1', 'd2'), severity: 'info' }, [], T0, grouping('i4'));
      assert.equal((await store.devices.get('d1'))?.healthScore, 5, '100 - 40 - 15 - 40');
      await alerts.fire({ ...alert('a5', 'r4', 'd1'), severity: 'critical' }, [], T0, grouping('i5'));
      assert.equal((await store.devices.get('d1'))?.healthScore, 0, 'never below 0');
      await alerts.resolve('a5', T0 + 1, [], () => []);
      await alerts.resolve('a3', T0 + 1, [], () => []);
      assert.equal((await store.devices.get('d1'))?.healthScore, 45);
      const worst = await store.devices.list({ sort: 'health', limit: 2 });
      assert.deepEqual(worst.map((d) => [d.id, d.healthScore]), [['d1', 45], ['d2', 95]]);
      const next = await store.devices.list({ sort: 'health', afterHealth: 95, after: 'd2', limit: 2 });
      assert.deepEqual(next.map((d) => [d.id, d.healthScore]), [['d3', 100]]);
    });

    it('makes one incident when many alerts of a rule fire at once', async (t) => {
      const { alerts } = await make(t);
      await Promise.all(Array.from({ length: 30 }, (_, i) => alerts.fire(alert(`a${i}`, 'r1', `d${i}`), [note(`n${i}`)], T0, grouping(`inc${i}`, T0, 3))));
      assert.equal((await alerts.listIncidents({ open: true, limit: 10 })).length, 1);
      assert.ok((await alerts.undelivered(100)).filter((n) => n.event === 'incident.opened').length === 1);
    });

    it('keeps the outbox in order, retries and marks delivered; silences expire; channels and rules round-trip', async (t) => {
      const { alerts } = await make(t);
      await alerts.fire(alert('a1', 'r1', 'd1'), [note('n1')], T0, grouping('i1'));
      await alerts.resolve('a1', T0 + 1, [note('n2', 'resolved')], () => []);
      await alerts.retryLater('n1', 1, T0 + 9_000, 'HTTP 503');
      const [first, second] = await alerts.undelivered(10);
      assert.deepEqual([first?.id, first?.attempts, first?.lastError, second?.id], ['n1', 1, 'HTTP 503', 'n2']);
      await alerts.delivered(['n1'], T0 + 9_001);
      await alerts.delivered([], T0 + 9_002);
      assert.deepEqual((await alerts.undelivered(10)).map((n) => n.id), ['n2']);
      assert.equal(await alerts.countUndelivered(), 1);

      await alerts.insertSilence({ id: 's1', ruleId: 'r1', deviceId: null, reason: 'maintenance', createdBy: 'usr_1', createdAt: T0, expiresAt: T0 + 1000 });
      assert.deepEqual((await alerts.activeSilences(T0 + 999)).map((s) => s.id), ['s1']);
      assert.deepEqual(await alerts.activeSilences(T0 + 1000), []);
      assert.equal(await alerts.expireSilence('s1', T0 + 2000), false, 'already over');

      await alerts.insertChannel({ id: 'c1', name: 'ops', kind: 'webhook', url: 'https://ops.example/hook', secret: 'sealed', minSeverity: 'warning', batch: false, createdBy: 'usr_1', createdAt: T0 });
      await alerts.insertChannel({ id: 'c2', name: 'bulk', kind: 'webhook', url: 'https://ops.example/bulk', secret: 'sealed', minSeverity: 'info', batch: true, createdBy: 'usr_1', createdAt: T0 + 1 });
      assert.deepEqual((await alerts.listChannels()).map((c) => [c.id, c.minSeverity, c.batch]), [['c1', 'warning', false], ['c2', 'info', true]]);
      assert.equal(await alerts.deleteChannel('c2'), true);
      assert.equal(await alerts.deleteChannel('c1'), true);

      await alerts.seedRules([{ ...rule('builtin-offline'), builtIn: true }]);
      await alerts.seedRules([{ ...rule('builtin-offline'), name: 'changed?', builtIn: true }]);
      const seeded = await alerts.getRule('builtin-offline');
      assert.deepEqual([seeded?.name, seeded?.builtIn, seeded?.condition], ['builtin-offline', true, { kind: 'offline', forMs: 60_000 }]);
      assert.equal(await alerts.updateRule({ ...(seeded as AlertRule), enabled: false, updatedAt: T0 + 1 }), true);
      assert.equal((await alerts.getRule('builtin-offline'))?.enabled, false);
    });
  });
}
