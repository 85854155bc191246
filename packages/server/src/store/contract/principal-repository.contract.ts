import assert from 'node:assert/strict';
import { type TestContext, describe, it } from 'node:test';
import type { Principal } from '../../access/index.js';
import type { Store } from '../store.js';

/** Returns a fresh, migrated, empty store and registers its own cleanup on `t`. */
export type MakeStore = (t: TestContext) => Promise<Store>;

export const T0 = Date.UTC(2026, 0, 1);

export function principal(id: string, over: Partial<Principal> = {}): Principal {
  return { id, kind: 'user', name: `name-${id}`, role: 'viewer', scopes: ['devices:read'], deviceGroups: null, createdAt: T0, disabledAt: null, ...over };
}

/** The PrincipalRepository port (users and service accounts). */
export function describePrincipalRepository(make: MakeStore): void {
  describe('PrincipalRepository contract', () => {
    it('starts empty', async (t) => {
      const { principals } = await make(t);
      assert.equal(await principals.count(), 0);
      assert.deepEqual(await principals.list(), []);
    });

    it('returns what was inserted, by id and by name', async (t) => {
      const { principals } = await make(t);
      const user = principal('usr_1', { name: 'alice', role: 'admin', scopes: ['*'] });
      const service = principal('svc_1', { kind: 'service', name: 'ingest-bot', role: null, scopes: ['telemetry:write', 'devices:read'], deviceGroups: ['site-7', 'canary'], disabledAt: T0 + 5 });
      await principals.insert(user);
      await principals.insert(service);
      assert.deepEqual(await principals.get('usr_1'), user);
      assert.deepEqual(await principals.get('svc_1'), service);
      assert.deepEqual(await principals.getByName('ingest-bot'), service);
      assert.equal(await principals.get('usr_missing'), undefined);
      assert.equal(await principals.getByName('bob'), undefined);
      assert.equal(await principals.getByName('ALICE'), undefined, 'names are matched exactly');
      assert.equal(await principals.setDeviceGroups('usr_1', ['site-7']), true);
      assert.deepEqual((await principals.get('usr_1'))?.deviceGroups, ['site-7']);
      assert.equal(await principals.setDeviceGroups('svc_1', null), true);
      assert.equal((await principals.get('svc_1'))?.deviceGroups, null, 'null: the whole fleet');
      assert.equal(await principals.setDeviceGroups('usr_missing', null), false);
    });

    it('lists by creation time, then id, and counts', async (t) => {
      const { principals } = await make(t);
      const order = [principal('usr_c', { createdAt: T0 + 2 }), principal('usr_b', { createdAt: T0 + 1 }), principal('usr_a', { createdAt: T0 + 2 }), principal('usr_z', { createdAt: T0 })];
      for (const p of order) await principals.insert(p);
      assert.deepEqual(
        (await principals.list()).map((p) => p.id),
        ['usr_z', 'usr_b', 'usr_a', 'usr_c'],
      );
      assert.equal(await principals.count(), 4);
    });

    it('refuses a second principal with the same name and keeps the first', async (t) => {
      const { principals } = await make(t);
      const first = principal('usr_1', { name: 'alice' });
      await principals.insert(first);
      await assert.rejects(principals.insert(principal('usr_2', { name: 'alice', kind: 'service', role: null })));
      assert.equal(await principals.get('usr_2'), undefined);
      assert.deepEqual(await principals.getByName('alice'), first);
      assert.equal(await principals.count(), 1);
    });

    it('refuses a second principal with the same id', async (t) => {
      const { principals } = await make(t);
      await principals.insert(principal('usr_1', { name: 'alice' }));
      await assert.rejects(principals.insert(principal('usr_1', { name: 'bob' })));
      assert.deepEqual(
        (await principals.list()).map((p) => p.name),
        ['alice'],
      );
    });

    it('disables and re-enables a principal, and reports an unknown id', async (t) => {
      const { principals } = await make(t);
      await principals.insert(principal('usr_1'));
      await principals.insert(principal('usr_2'));
      assert.equal(await principals.setDisabled('usr_1', T0 + 10), true);
      assert.equal((await principals.get('usr_1'))?.disabledAt, T0 + 10);
      assert.equal((await principals.get('usr_2'))?.disabledAt, null, 'other principals are untouched');
      assert.equal(await principals.setDisabled('usr_1', null), true);
      assert.deepEqual(await principals.get('usr_1'), principal('usr_1'));
      assert.equal(await principals.setDisabled('usr_missing', T0), false);
      assert.equal(await principals.count(), 2);
    });
  });
}
