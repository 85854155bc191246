import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DeviceGroup, GroupQuery, Device } from '../../registry/index.js';
import type { Store } from '../store.js';
import { type MakeStore, T0 } from './principal-repository.contract.js';

const device = (id: string, over: Partial<Device> = {}): Device => ({
  id,
  serial: null,
  model: 'gw',
  hardwareRevision: 'B',
  firmwareVersion: '1.0.0',
  securityVersion: 3,
  owner: 'acme',
  location: 'site-7',
  tags: [],
  state: 'active',
  suspendedFrom: null,
  createdAt: T0,
  updatedAt: T0,
  healthScore: 100,
  connectivity: { online: false, onlineSince: null, lastSeenAt: null, connectCount: 0, lastDisconnectAt: null, lastDisconnectReason: null },
  ...over,
});

const group = (id: string, over: Partial<DeviceGroup> = {}): DeviceGroup => ({
  id,
  description: null,
  kind: 'static',
  query: null,
  createdBy: 'usr_1',
  createdAt: T0,
  updatedAt: T0,
  ...over,
});

/** The ids a dynamic query selects, through the device list (the path every user of groups takes). */
async function matching(store: Store, query: GroupQuery, now = T0 + 10_000): Promise<string[]> {
  const selector = { kind: 'dynamic' as const, query, now };
  const ids = (await store.devices.list({ group: selector, limit: 100 })).map((d) => d.id);
  assert.equal(await store.groups.count(selector), ids.length, 'count agrees with the list');
  return ids;
}

/** GroupRepository: groups and static members; dynamic queries evaluated by the store over the registry. */
export function describeGroupRepository(make: MakeStore): void {
  describe('GroupRepository contract', () => {
    it('keeps groups and their members; a delete takes the memberships with it', async (t) => {
      const store = await make(t);
      const { groups, devices } = store;
      await devices.insertMany([device('a'), device('b'), device('c')]);
      assert.equal(await groups.insert(group('canary', { description: 'first to update' })), true);
      assert.equal(await groups.insert(group('canary')), false, 'ids are unique');
      assert.equal(await groups.insert(group('hot', { kind: 'dynamic', query: { healthBelow: 80, tags: ['x'] } })), true);
      assert.deepEqual((await groups.get('hot'))?.query, { healthBelow: 80, tags: ['x'] });
      assert.deepEqual(
        (await groups.list({ limit: 10 })).map((g) => g.id),
        ['canary', 'hot'],
      );
      assert.deepEqual(
        (await groups.list({ after: 'canary', limit: 10 })).map((g) => g.id),
        ['hot'],
      );

      assert.equal(await groups.addMembers('canary', ['a', 'b'], T0), 2);
      assert.equal(await groups.addMembers('canary', ['b', 'c'], T0), 1, 'a member already in is not added twice');
      assert.deepEqual(await groups.missingDevices(['a', 'nope', 'c', 'gone']), ['nope', 'gone']);
      const canary = { kind: 'static' as const, groupId: 'canary' };
      assert.deepEqual(
        (await devices.list({ group: canary, limit: 10 })).map((d) => d.id),
        ['a', 'b', 'c'],
      );
      assert.deepEqual(
        (await devices.list({ group: canary, after: 'a', limit: 1 })).map((d) => d.id),
        ['b'],
        'paged by id',
      );
      assert.equal(await groups.removeMembers('canary', ['a', 'zz']), 1);
      assert.equal(await groups.count(canary), 2);

      assert.equal(await groups.update('canary', { description: null }, T0 + 1), true);
      assert.equal((await groups.get('canary'))?.description, null);
      assert.equal((await groups.get('canary'))?.updatedAt, T0 + 1);
      assert.equal(await groups.update('nope', { description: 'x' }, T0), false);
      assert.equal(await groups.delete('canary'), true);
      assert.equal(await groups.delete('canary'), false);
      assert.equal(await groups.insert(group('canary')), true);
      assert.equal(await groups.count(canary), 0, 'a group made again under the same name starts empty');
    });

    it('evaluates every criterion of a dynamic query against the registry as it is now', async (t) => {
      const store = await make(t);
      const { devices, alerts } = store;
      await devices.insertMany([
        device('gw_1', { tags: ['site=7', 'pilot'] }),
        device('gwx1', { model: 'sensor', tags: ['site=7'], firmwareVersion: '2.0.0', securityVersion: null }),
        device('s-3', { state: 'suspended', owner: 'other', location: 'site-8', hardwareRevision: 'C', securityVersion: 9 }),
        device('s-4', { state: 'manufactured' }),
      ]);
      await devices.recordConnectivity([
        { kind: 'connect', id: 'gw_1', at: T0, node: 'n' },
        { kind: 'connect', id: 's-3', at: T0, node: 'n' },
        { kind: 'disconnect', id: 's-3', at: T0 + 1000, reason: 'gone', node: 'n' },
      ]);
      await alerts.fire(
        {
          id: 'al1',
          ruleId: 'r1',
          deviceId: 'gwx1',
          type: 'offline',
          severity: 'critical',
          state: 'firing',
          summary: 's',
          details: {},
          firedAt: T0,
          acknowledgedAt: null,
          acknowledgedBy: null,
          resolvedAt: null,
          silenced: false,
          incidentId: null,
        },
        [],
        T0,
        { windowMs: 1000, minAlerts: 100, sendAt: T0, newIncidentId: 'i1', opened: () => [] },
      );

      assert.deepEqual(await matching(store, { state: ['active', 'suspended'] }), ['gw_1', 'gwx1', 's-3']);
      assert.deepEqual(await matching(store, { model: ['gw'], state: ['active'] }), ['gw_1'], 'criteria together');
      assert.deepEqual(await matching(store, { tags: ['site=7'] }), ['gw_1', 'gwx1']);
      assert.deepEqual(await matching(store, { tags: ['site=7', 'pilot'] }), ['gw_1'], 'every tag');
      assert.deepEqual(await matching(store, { idPrefix: 'gw_' }), ['gw_1'], '"_" is a character of the prefix, not a wildcard');
      assert.deepEqual(await matching(store, { idPrefix: 's-' }), ['s-3', 's-4']);
      assert.deepEqual(await matching(store, { idPrefix: 'GW' }), [], 'ids are compared exactly, case included');
      assert.deepEqual(await matching(store, { firmware: ['2.0.0', '9.9.9'] }), ['gwx1']);
      assert.deepEqual(await matching(store, { securityBelow: 5 }), ['gw_1', 'gwx1', 's-4'], 'unknown counts as below');
      assert.deepEqual(await matching(store, { owner: ['other'], location: ['site-8'], hardwareRevision: ['C'] }), ['s-3']);
      assert.deepEqual(await matching(store, { online: true }), ['gw_1']);
      assert.deepEqual(await matching(store, { online: false }), ['gwx1', 's-3', 's-4']);
      assert.deepEqual(await matching(store, { offlineForMs: 5000 }, T0 + 10_000), ['s-3'], 'never-seen devices are left out');
      assert.deepEqual(await matching(store, { offlineForMs: 5000 }, T0 + 3000), [], 'not offline that long yet');
      assert.deepEqual(await matching(store, { healthBelow: 80 }), ['gwx1']);
      assert.deepEqual(await matching(store, { alertState: ['firing'] }), ['gwx1']);
      assert.deepEqual(await matching(store, { alertState: ['none'], state: ['active'] }), ['gw_1']);
    });
  });
}
