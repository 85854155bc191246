import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Alert, type AlertRule, type Grouping, type Outgoing, type Transition, TransitionsPartlyApplied } from '../../alerts/index.js';
import { verifyChain } from '../../audit/index.js';
import { type MakeStore, T0 } from './principal-repository.contract.js';
import { testDevice } from './device-state.contract.js';

const rule = (id: string): AlertRule => ({
  id,
  name: id,
  severity: 'critical',
  scope: { deviceIds: [], tags: [], models: [], groups: [], schemas: [] },
  condition: { kind: 'offline', forMs: 60_000 },
  enabled: true,
  builtIn: false,
  createdBy: 'usr_1',
  createdAt: T0,
  updatedAt: T0,
});
const alert = (id: string, ruleId: string, deviceId: string, at = T0): Alert => ({
  id,
  ruleId,
  deviceId,
  type: 'offline',
  severity: 'critical',
  state: 'firing',
  summary: 'offline',
  details: { n: 1 },
  firedAt: at,
  acknowledgedAt: null,
  acknowledgedBy: null,
  resolvedAt: null,
  silenced: false,
  incidentId: null,
});
const note = (id: string, event: Outgoing['event'] = 'fired'): Outgoing => ({ id, channelId: 'chan_1', event, body: `{"id":"${id}"}` });
const grouping = (incidentId: string, at = T0, minAlerts = 5): Grouping => ({
  windowMs: 60_000,
  minAlerts,
  sendAt: at + 1000,
  newIncidentId: incidentId,
  opened: (i) => [note(`open-${i.id}-${i.alerts}`, 'incident.opened')],
});

const fire = (id: string, deviceId: string, outgoing: readonly Outgoing[], at = T0): Transition => ({
  kind: 'fire',
  alert: alert(id, 'r1', deviceId, at),
  outgoing,
  at,
  grouping: grouping(`inc-${id}`, at, 100),
  audit: { actor: 'system', action: 'alert.fire', target: id, details: {} },
});
const resolve = (deviceId: string, outgoing: () => readonly Outgoing[], at = T0): Transition => ({
  kind: 'resolve',
  ruleId: 'r1',
  deviceId,
  at,
  outgoing,
  closed: () => [],
  audit: (a) => ({ actor: 'system', action: 'alert.resolve', target: a.id, details: {} }),
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
      assert.deepEqual(
        (await alerts.undelivered(100)).map((n) => n.event),
        ['fired', 'resolved'],
      );
    });

    it('acknowledges a firing alert once; lists by state, device and rule, newest first', async (t) => {
      const { alerts } = await make(t);
      await alerts.fire(alert('a1', 'r1', 'd1', T0), [], T0, grouping('i1'));
      await alerts.fire(alert('a2', 'r1', 'd2', T0 + 1), [], T0 + 1, grouping('i2'));
      await alerts.fire(alert('a3', 'r2', 'd1', T0 + 2), [], T0 + 2, grouping('i3'));
      assert.equal(await alerts.acknowledge('a1', 'usr_1', T0 + 3), true);
      assert.equal(await alerts.acknowledge('a1', 'usr_1', T0 + 4), false);
      await alerts.resolve('a2', T0 + 5, [], () => []);
      assert.deepEqual(
        (await alerts.list({ state: 'open', limit: 10 })).map((a) => a.id),
        ['a3', 'a1'],
      );
      assert.deepEqual(
        (await alerts.list({ state: 'acknowledged', limit: 10 })).map((a) => a.id),
        ['a1'],
      );
      assert.deepEqual(
        (await alerts.list({ state: 'resolved', limit: 10 })).map((a) => a.id),
        ['a2'],
      );
      assert.deepEqual(
        (await alerts.list({ deviceId: 'd1', limit: 10 })).map((a) => a.id),
        ['a3', 'a1'],
      );
      assert.deepEqual(
        (await alerts.list({ ruleId: 'r1', before: T0 + 1, limit: 10 })).map((a) => a.id),
        ['a1'],
      );
      assert.equal(await alerts.countOpen(), 2);
      assert.deepEqual((await alerts.get('a1'))?.details, { n: 1 });
    });

    it("makes one incident of a rule's recent alerts: their unsent notifications are replaced by one; later ones join; the last resolve closes it", async (t) => {
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
      assert.deepEqual(await alerts.listIncidents({ open: true, limit: 10 }), []);
      assert.equal((await alerts.listIncidents({ open: false, limit: 10 }))[0]?.closedAt, T0 + 15);
    });

    it("keeps each device's health score: 100 less a penalty per open alert, worst first in the device list", async (t) => {
      const store = await make(t);
      await store.devices.insertMany([testDevice('d1'), testDevice('d2'), testDevice('d3')]);
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
      assert.deepEqual(
        worst.map((d) => [d.id, d.healthScore]),
        [
          ['d1', 45],
          ['d2', 95],
        ],
      );
      const next = await store.devices.list({ sort: 'health', afterHealth: 95, after: 'd2', limit: 2 });
      assert.deepEqual(
        next.map((d) => [d.id, d.healthScore]),
        [['d3', 100]],
      );
    });

    it('makes one incident when many alerts of a rule fire at once', async (t) => {
      const { alerts } = await make(t);
      await Promise.all(Array.from({ length: 30 }, (_, i) => alerts.fire(alert(`a${i}`, 'r1', `d${i}`), [note(`n${i}`)], T0, grouping(`inc${i}`, T0, 3))));
      assert.equal((await alerts.listIncidents({ open: true, limit: 10 })).length, 1);
      assert.ok((await alerts.undelivered(100)).filter((n) => n.event === 'incident.opened').length === 1);
    });

    it('applies a group of transitions with an audit entry each that changed an alert; one that fails rolls back alone, the others commit', async (t) => {
      const store = await make(t);
      const { alerts } = store;
      await alerts.fire(alert('old', 'r1', 'd9'), [], T0, grouping('i0'));
      const applied = await alerts.apply([fire('a1', 'd1', [note('n1')], T0 + 1), resolve('d9', () => [note('n-old', 'resolved')], T0 + 2), fire('a2', 'd1', [note('n2')], T0 + 3)]);
      assert.deepEqual(
        applied.map((r) => (typeof r === 'object' ? r.resolved.id : r)),
        ['fired', 'old', 'open'],
      );

      // The second reuses a notification id (the outbox's key refuses it), the third's notifications cannot be made.
      const group = [
        fire('b1', 'd2', [note('m1')], T0 + 4),
        fire('b2', 'd3', [note('n1')], T0 + 5),
        resolve(
          'd1',
          () => {
            throw new Error('no body');
          },
          T0 + 6,
        ),
        fire('b3', 'd4', [note('m3')], T0 + 7),
      ];
      let outcomes: readonly { ok: boolean }[] = [];
      await assert.rejects(alerts.apply(group), (err: unknown) => {
        assert.ok(err instanceof TransitionsPartlyApplied);
        outcomes = err.outcomes;
        return true;
      });
      assert.deepEqual(
        outcomes.map((o) => o.ok),
        [true, false, false, true],
      );
      assert.deepEqual(outcomes[0], { ok: true, result: 'fired' });
      // Nothing of the failed ones: b2 not stored, a1 still open, no second n1.
      assert.equal(await alerts.get('b2'), undefined);
      assert.equal(await alerts.open('r1', 'd3'), undefined);
      assert.equal((await alerts.get('a1'))?.state, 'firing');
      assert.deepEqual((await alerts.list({ state: 'open', limit: 10 })).map((a) => a.id).sort(), ['a1', 'b1', 'b3']);
      assert.deepEqual(
        (await alerts.undelivered(10)).map((n) => n.id),
        ['n1', 'n-old', 'm1', 'm3'],
      );
      // The chain holds the applied ones, in order, unbroken.
      const entries = await store.audit.scan(0, 100);
      assert.deepEqual(
        entries.map((e) => [e.seq, e.action, e.target, e.ts]),
        [
          [1, 'alert.fire', 'a1', T0 + 1],
          [2, 'alert.resolve', 'old', T0 + 2],
          [3, 'alert.fire', 'b1', T0 + 4],
          [4, 'alert.fire', 'b3', T0 + 7],
        ],
      );
      assert.equal((await verifyChain((after, limit) => store.audit.scan(after, limit), await store.audit.head())).ok, true);

      // A group that fails whole (one transition) rejects with its own error.
      await assert.rejects(alerts.apply([fire('c1', 'd5', [note('m1')])]), (err: unknown) => !(err instanceof TransitionsPartlyApplied));
      assert.equal(await alerts.get('c1'), undefined);
    });

    it("makes one incident of a group's fires and counts each of its alerts once", async (t) => {
      const { alerts } = await make(t);
      const group = Array.from({ length: 8 }, (_, i): Transition => ({ ...fire(`a${i}`, `d${i}`, [note(`n${i}`)]), grouping: grouping(`inc${i}`, T0, 3) }) as Transition);
      const results = await alerts.apply(group);
      assert.deepEqual(results, ['fired', 'fired', 'grouped', 'grouped', 'grouped', 'grouped', 'grouped', 'grouped']);
      const [incident, ...others] = await alerts.listIncidents({ open: true, limit: 10 });
      assert.deepEqual([incident?.alerts, others.length], [8, 0]);
      assert.equal((await alerts.list({ state: 'open', limit: 10 })).filter((a) => a.incidentId === incident?.id).length, 8);
      assert.deepEqual(
        (await alerts.undelivered(10)).map((n) => n.event),
        ['incident.opened'],
      );
    });

    it('keeps the outbox in order, retries and marks delivered; silences expire; channels and rules round-trip', async (t) => {
      const { alerts } = await make(t);
      await alerts.fire(alert('a1', 'r1', 'd1'), [note('n1')], T0, grouping('i1'));
      await alerts.resolve('a1', T0 + 1, [note('n2', 'resolved')], () => []);
      await alerts.retryLater('n1', 1, T0 + 9_000, 'HTTP 503');
      const [first, second] = await alerts.undelivered(10);
      assert.deepEqual([first?.id, first?.attempts, first?.lastError, second?.id], ['n1', 1, 'HTTP 503', 'n2']);
      assert.deepEqual(
        (await alerts.undelivered(10, ['n1', 'nope'])).map((n) => [n.id, n.body]),
        [['n2', '{"id":"n2"}']],
        'those skipped are left out',
      );
      assert.deepEqual((await alerts.undelivered(10, ['n1', 'n2'])).length, 0);
      await alerts.delivered(['n1'], T0 + 9_001);
      await alerts.delivered([], T0 + 9_002);
      assert.deepEqual(
        (await alerts.undelivered(10)).map((n) => n.id),
        ['n2'],
      );
      assert.equal(await alerts.countUndelivered(), 1);

      await alerts.insertSilence({ id: 's1', ruleId: 'r1', deviceId: null, reason: 'maintenance', createdBy: 'usr_1', createdAt: T0, expiresAt: T0 + 1000 });
      assert.deepEqual(
        (await alerts.activeSilences(T0 + 999)).map((s) => s.id),
        ['s1'],
      );
      assert.deepEqual(await alerts.activeSilences(T0 + 1000), []);
      assert.equal(await alerts.expireSilence('s1', T0 + 2000), false, 'already over');

      await alerts.insertChannel({ id: 'c1', name: 'ops', kind: 'webhook', url: 'https://ops.example/hook', secret: 'sealed', minSeverity: 'warning', batch: false, createdBy: 'usr_1', createdAt: T0 });
      await alerts.insertChannel({ id: 'c2', name: 'bulk', kind: 'webhook', url: 'https://ops.example/bulk', secret: 'sealed', minSeverity: 'info', batch: true, createdBy: 'usr_1', createdAt: T0 + 1 });
      assert.deepEqual(
        (await alerts.listChannels()).map((c) => [c.id, c.minSeverity, c.batch]),
        [
          ['c1', 'warning', false],
          ['c2', 'info', true],
        ],
      );
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
