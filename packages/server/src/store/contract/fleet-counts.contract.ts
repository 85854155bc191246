import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Alert, Grouping } from '../../alerts/index.js';
import { shapeCounts, type Device, type FleetCounts, type LifecycleState } from '../../registry/index.js';
import type { Store } from '../store.js';
import { type MakeStore, T0 } from './principal-repository.contract.js';

const device = (id: string, over: Partial<Device> = {}): Device => ({
  id,
  serial: null,
  model: 'm1',
  hardwareRevision: null,
  firmwareVersion: '1.0.0',
  securityVersion: null,
  owner: null,
  location: null,
  tags: [],
  state: 'active',
  suspendedFrom: null,
  createdAt: T0,
  updatedAt: T0,
  healthScore: 100,
  connectivity: { online: false, onlineSince: null, lastSeenAt: null, connectCount: 0, lastDisconnectAt: null, lastDisconnectReason: null },
  ...over,
});

const alert = (id: string, deviceId: string, severity: Alert['severity']): Alert => ({
  id,
  ruleId: `rule-${id}`,
  deviceId,
  type: 'offline',
  severity,
  state: 'firing',
  summary: 'offline',
  details: {},
  firedAt: T0,
  acknowledgedAt: null,
  acknowledgedBy: null,
  resolvedAt: null,
  silenced: false,
  incidentId: null,
});
const grouping = (id: string): Grouping => ({ windowMs: 60_000, minAlerts: 1000, sendAt: T0, newIncidentId: `inc-${id}`, opened: () => [] });

/** The counts recomputed from the devices themselves: what the kept counts must always equal. */
async function recount(store: Store): Promise<FleetCounts> {
  const all: Device[] = [];
  for (let after: string | undefined; ;) {
    const page = await store.devices.list({ limit: 1000, ...(after !== undefined ? { after } : {}) });
    all.push(...page);
    if (page.length < 1000) break;
    after = page.at(-1)?.id;
  }
  const rows = new Map<string, number>();
  const add = (dim: string, value: string) => rows.set(`${dim}\u0000${value}`, (rows.get(`${dim}\u0000${value}`) ?? 0) + 1);
  for (const d of all) {
    add('state', d.state);
    if (d.state === 'decommissioned') continue;
    add('connectivity', d.connectivity.online ? 'online' : 'offline');
    add('model', d.model ?? '');
    add('firmware', d.firmwareVersion ?? '');
    add('health', d.healthScore >= 80 ? 'good' : d.healthScore >= 50 ? 'fair' : 'poor');
  }
  for (const d of all) {
    if (d.state === 'decommissioned') continue;
    const open = await store.alerts.list({ state: 'open', deviceId: d.id, limit: 100 });
    add('alerts', open.length === 0 ? 'none' : open.some((a) => a.acknowledgedAt === null) ? 'firing' : 'acknowledged');
  }
  return shapeCounts(
    [...rows].map(([k, n]) => {
      const [dim = '', value = ''] = k.split('\u0000');
      return { dim, value, n };
    }),
  );
}

const counts = async (store: Store) => shapeCounts(await store.devices.counts());

/**
 * DeviceRepository counts: kept by the store as devices change, exact before and after a fold,
 * each change counted once when folds run beside writes.
 */
export function describeFleetCounts(make: MakeStore): void {
  describe('DeviceRepository fleet counts contract', () => {
    it('counts every dimension as devices are added, connect, change, raise alerts and retire', async (t) => {
      const store = await make(t);
      const { devices, alerts } = store;
      assert.deepEqual((await counts(store)).total, 0);
      await devices.insertMany([device('a'), device('b'), device('c', { model: 'm2', firmwareVersion: null }), device('d', { model: null, state: 'manufactured' })]);
      await devices.recordConnectivity([
        { kind: 'connect', id: 'a', at: T0 + 1, node: 'n' },
        { kind: 'connect', id: 'b', at: T0 + 1, node: 'n' },
      ]);
      await devices.updateAttributes('b', { firmwareVersion: '1.1.0' }, T0 + 2);
      let c = await counts(store);
      assert.equal(c.total, 4);
      assert.deepEqual(c.byState, { manufactured: 1, provisioned: 0, active: 3, suspended: 0, decommissioned: 0 });
      assert.deepEqual(c.byConnectivity, { online: 2, offline: 2 });
      assert.deepEqual(c.byModel, [
        { value: 'm1', count: 2 },
        { value: 'm2', count: 1 },
        { value: null, count: 1 },
      ]);
      assert.deepEqual(c.byFirmware, [
        { value: '1.0.0', count: 2 },
        { value: '1.1.0', count: 1 },
        { value: null, count: 1 },
      ]);
      assert.deepEqual(c.byHealth, { good: 4, fair: 0, poor: 0 });
      assert.deepEqual(c.byAlertState, { firing: 0, acknowledged: 0, none: 4 });

      await alerts.fire(alert('x1', 'a', 'critical'), [], T0, grouping('x1'));
      await alerts.fire(alert('x2', 'a', 'critical'), [], T0, grouping('x2'));
      await alerts.fire(alert('x3', 'b', 'warning'), [], T0, grouping('x3'));
      c = await counts(store);
      assert.deepEqual(c.byHealth, { good: 3, fair: 0, poor: 1 }, 'a: 100 - 40 - 40 = 20; b: 85');
      assert.deepEqual(c.byAlertState, { firing: 2, acknowledged: 0, none: 2 });
      assert.equal(await alerts.acknowledge('x3', 'usr_1', T0 + 3), true);
      assert.equal(await alerts.acknowledge('x1', 'usr_1', T0 + 3), true);
      c = await counts(store);
      assert.deepEqual(c.byAlertState, { firing: 1, acknowledged: 1, none: 2 }, 'a still has x2 unacknowledged; b has only acknowledged ones');
      assert.equal((await devices.get('b'))?.healthScore, 85, 'acknowledging leaves the score alone');

      assert.ok((await devices.foldCounts()) > 0);
      assert.deepEqual(await counts(store), c, 'a fold changes nothing a reader sees');
      assert.equal(await devices.foldCounts(), 0, 'nothing left to fold');

      await alerts.resolve('x2', T0 + 4, [], () => []);
      await devices.recordConnectivity([{ kind: 'disconnect', id: 'a', at: T0 + 5, reason: 'gone', node: 'n' }]);
      assert.equal(await devices.transition('a', ['active'], 'decommissioned', T0 + 6), true);
      c = await counts(store);
      assert.deepEqual(c.byState, { manufactured: 1, provisioned: 0, active: 2, suspended: 0, decommissioned: 1 });
      assert.equal(c.total, 4);
      assert.deepEqual(c.byConnectivity, { online: 1, offline: 2 }, 'a decommissioned device counts only by state');
      assert.deepEqual(c.byModel, [
        { value: 'm1', count: 1 },
        { value: 'm2', count: 1 },
        { value: null, count: 1 },
      ]);
      assert.deepEqual(c.byAlertState, { firing: 0, acknowledged: 1, none: 2 });
      assert.deepEqual(c, await recount(store));
      await devices.foldCounts();
      assert.deepEqual(await counts(store), await recount(store));
      assert.equal(
        (await devices.counts()).some((r) => r.n === 0),
        false,
        'no zero rows',
      );
      // Counted by a scan for the devices of some groups: the whole fleet through a query that selects all, the same numbers.
      const everyone = { kind: 'dynamic' as const, query: { state: ['manufactured', 'provisioned', 'active', 'suspended', 'decommissioned'] as LifecycleState[] }, now: T0 + 10 };
      assert.deepEqual(shapeCounts(await devices.countsWithin([everyone])), await recount(store));
      assert.deepEqual(shapeCounts(await devices.countsWithin([])).total, 0, 'no group: no device');
    });

    it('counts each change once when folds run beside many writers', async (t) => {
      const store = await make(t);
      const { devices } = store;
      const ids = Array.from({ length: 60 }, (_, i) => `dev-${String(i).padStart(3, '0')}`);
      await devices.insertMany(ids.map((id, i) => device(id, { model: `m${i % 3}` })));
      const writes: Promise<unknown>[] = [];
      for (let round = 0; round < 5; round += 1) {
        for (const [i, id] of ids.entries()) {
          const at = T0 + round * 10 + 1;
          writes.push(devices.recordConnectivity([{ kind: round % 2 === 0 ? 'connect' : 'disconnect', id, at, node: 'n', reason: 'x' } as never]));
          if (i % 7 === round) writes.push(devices.updateAttributes(id, { firmwareVersion: `2.${round}.0` }, at));
        }
        writes.push(devices.foldCounts(), devices.foldCounts());
      }
      await Promise.all(writes);
      assert.deepEqual(await counts(store), await recount(store));
      await devices.foldCounts();
      assert.deepEqual(await counts(store), await recount(store));
    });
  });
}
