import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ApiKeyRecord } from '../../access/index.js';
import type { Store } from '../store.js';
import { type MakeStore, T0, principal } from './principal-repository.contract.js';
import { settleAll } from './sql-client.contract.js';

function key(id: string, principalId: string, over: Partial<ApiKeyRecord> = {}): ApiKeyRecord {
  return {
    id,
    principalId,
    name: `key ${id}`,
    secretHash: `scrypt$${id}$hash`,
    scopes: null,
    createdAt: T0,
    expiresAt: null,
    revokedAt: null,
    lastUsedAt: null,
    ...over,
  };
}

async function withPrincipals(store: Store, ...ids: string[]): Promise<Store> {
  for (const id of ids) await store.principals.insert(principal(id));
  return store;
}

/** The ApiKeyRepository port (keys stored hashed, revoked once, touched on use). */
export function describeApiKeyRepository(make: MakeStore): void {
  describe('ApiKeyRepository contract', () => {
    it('returns what was inserted, with and without narrowed scopes', async (t) => {
      const { apiKeys } = await withPrincipals(await make(t), 'usr_1');
      const plain = key('key_a', 'usr_1');
      const narrowed = key('key_b', 'usr_1', { scopes: ['devices:read', 'audit:read'], expiresAt: T0 + 86_400_000, lastUsedAt: T0 + 1 });
      await apiKeys.insert(plain);
      await apiKeys.insert(narrowed);
      assert.deepEqual(await apiKeys.get('key_a'), plain);
      assert.deepEqual(await apiKeys.get('key_b'), narrowed);
      assert.equal(await apiKeys.get('key_missing'), undefined);
    });

    it("lists all keys, or one principal's, by creation time then id", async (t) => {
      const { apiKeys } = await withPrincipals(await make(t), 'usr_1', 'usr_2');
      await apiKeys.insert(key('key_c', 'usr_1', { createdAt: T0 + 2 }));
      await apiKeys.insert(key('key_b', 'usr_2', { createdAt: T0 + 1 }));
      await apiKeys.insert(key('key_a', 'usr_1', { createdAt: T0 + 2 }));
      await apiKeys.insert(key('key_d', 'usr_1', { createdAt: T0 }));
      assert.deepEqual(
        (await apiKeys.list()).map((k) => k.id),
        ['key_d', 'key_b', 'key_a', 'key_c'],
      );
      assert.deepEqual(
        (await apiKeys.listByPrincipal('usr_1')).map((k) => k.id),
        ['key_d', 'key_a', 'key_c'],
      );
      assert.deepEqual(
        (await apiKeys.listByPrincipal('usr_2')).map((k) => k.id),
        ['key_b'],
      );
      assert.deepEqual(await apiKeys.listByPrincipal('usr_missing'), []);
    });

    it('refuses a key whose id is taken, and keeps the first', async (t) => {
      const { apiKeys } = await withPrincipals(await make(t), 'usr_1', 'usr_2');
      await apiKeys.insert(key('key_a', 'usr_1'));
      await assert.rejects(apiKeys.insert(key('key_a', 'usr_2', { secretHash: 'other' })));
      assert.deepEqual(await apiKeys.get('key_a'), key('key_a', 'usr_1'));
    });

    it('refuses a key for a principal that does not exist', async (t) => {
      const { apiKeys } = await withPrincipals(await make(t), 'usr_1');
      await assert.rejects(apiKeys.insert(key('key_a', 'usr_missing')));
      assert.deepEqual(await apiKeys.list(), []);
    });

    it('revokes a key only once and keeps the first revocation time', async (t) => {
      const { apiKeys } = await withPrincipals(await make(t), 'usr_1');
      await apiKeys.insert(key('key_a', 'usr_1'));
      await apiKeys.insert(key('key_b', 'usr_1'));
      assert.equal(await apiKeys.revoke('key_a', T0 + 10), true);
      assert.equal(await apiKeys.revoke('key_a', T0 + 20), false);
      assert.equal((await apiKeys.get('key_a'))?.revokedAt, T0 + 10);
      assert.equal((await apiKeys.get('key_b'))?.revokedAt, null, 'other keys are untouched');
      assert.equal(await apiKeys.revoke('key_missing', T0), false);
    });

    it('revokes once when two callers revoke at the same time', async (t) => {
      const { apiKeys } = await withPrincipals(await make(t), 'usr_1');
      await apiKeys.insert(key('key_a', 'usr_1'));
      const outcomes = await settleAll(Array.from({ length: 8 }, (_, i) => apiKeys.revoke('key_a', T0 + i)));
      assert.equal(outcomes.filter(Boolean).length, 1);
      const winner = outcomes.indexOf(true);
      assert.equal((await apiKeys.get('key_a'))?.revokedAt, T0 + winner);
    });

    it('records the last use of a key, and ignores an unknown id', async (t) => {
      const { apiKeys } = await withPrincipals(await make(t), 'usr_1');
      await apiKeys.insert(key('key_a', 'usr_1'));
      await apiKeys.insert(key('key_b', 'usr_1'));
      await apiKeys.touch('key_a', T0 + 5);
      assert.equal((await apiKeys.get('key_a'))?.lastUsedAt, T0 + 5);
      await apiKeys.touch('key_a', T0 + 9);
      assert.deepEqual(await apiKeys.get('key_a'), key('key_a', 'usr_1', { lastUsedAt: T0 + 9 }));
      assert.equal((await apiKeys.get('key_b'))?.lastUsedAt, null);
      await apiKeys.touch('key_missing', T0);
      assert.equal(await apiKeys.get('key_missing'), undefined);
    });
  });
}
