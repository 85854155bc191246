import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DataKeyRecord, SealedSecret, SecretRepository } from '../../secrets/index.js';
import { type MakeStore, T0 } from './principal-repository.contract.js';

function dataKey(id: string, over: Partial<DataKeyRecord> = {}): DataKeyRecord {
  return { id, wrapped: `wrapped-${id}-by-mk1`, masterKeyId: 'mk1', createdAt: T0, retiredAt: null, ...over };
}

function secret(name: string, over: Partial<SealedSecret> = {}): SealedSecret {
  return { name, dataKeyId: 'dk_1', sealed: `sealed-${name}`, updatedAt: T0, ...over };
}

async function withKeys(secrets: SecretRepository, ...keys: DataKeyRecord[]): Promise<SecretRepository> {
  for (const k of keys) await secrets.insertDataKey(k);
  return secrets;
}

/** The SecretRepository port: wrapped data keys (re-wrapped all or nothing) and sealed secrets. */
export function describeSecretRepository(make: MakeStore): void {
  describe('SecretRepository contract', () => {
    it('starts empty', async (t) => {
      const { secrets } = await make(t);
      assert.deepEqual(await secrets.listDataKeys(), []);
      assert.deepEqual(await secrets.listSecretNames(), []);
      assert.equal(await secrets.getSecret('anything'), undefined);
    });

    it('lists inserted data keys by creation time, then id', async (t) => {
      const { secrets } = await make(t);
      const keys = [dataKey('dk_c', { createdAt: T0 + 2 }), dataKey('dk_b', { createdAt: T0 + 1, retiredAt: T0 + 2 }), dataKey('dk_a', { createdAt: T0 + 2 })];
      await withKeys(secrets, ...keys);
      assert.deepEqual(await secrets.listDataKeys(), [keys[1], keys[2], keys[0]]);
    });

    it('refuses a data key whose id is taken', async (t) => {
      const secrets = await withKeys((await make(t)).secrets, dataKey('dk_1'));
      await assert.rejects(secrets.insertDataKey(dataKey('dk_1', { wrapped: 'other' })));
      assert.deepEqual(await secrets.listDataKeys(), [dataKey('dk_1')]);
    });

    it('re-wraps the listed data keys and nothing else', async (t) => {
      const secrets = await withKeys((await make(t)).secrets, dataKey('dk_1'), dataKey('dk_2', { retiredAt: T0 + 1 }), dataKey('dk_3'));
      await secrets.rewrapDataKeys([
        { id: 'dk_1', wrapped: 'wrapped-dk_1-by-mk2', masterKeyId: 'mk2' },
        { id: 'dk_2', wrapped: 'wrapped-dk_2-by-mk2', masterKeyId: 'mk2' },
      ]);
      assert.deepEqual(await secrets.listDataKeys(), [dataKey('dk_1', { wrapped: 'wrapped-dk_1-by-mk2', masterKeyId: 'mk2' }), dataKey('dk_2', { wrapped: 'wrapped-dk_2-by-mk2', masterKeyId: 'mk2', retiredAt: T0 + 1 }), dataKey('dk_3')]);
      await secrets.rewrapDataKeys([]);
      assert.equal((await secrets.listDataKeys()).length, 3);
    });

    it('re-wraps all or nothing: a missing id fails the call and changes no key', async (t) => {
      const before = [dataKey('dk_1'), dataKey('dk_2'), dataKey('dk_3')];
      const secrets = await withKeys((await make(t)).secrets, ...before);
      const rewrap = (id: string) => ({ id, wrapped: `wrapped-${id}-by-mk2`, masterKeyId: 'mk2' });
      await assert.rejects(secrets.rewrapDataKeys([rewrap('dk_1'), rewrap('dk_2'), rewrap('dk_missing')]));
      assert.deepEqual(await secrets.listDataKeys(), before);
      await assert.rejects(secrets.rewrapDataKeys([rewrap('dk_1'), rewrap('dk_missing'), rewrap('dk_3')]));
      assert.deepEqual(await secrets.listDataKeys(), before);
    });

    it('stores, replaces and reads back sealed secrets', async (t) => {
      const secrets = await withKeys((await make(t)).secrets, dataKey('dk_1'), dataKey('dk_2'));
      await secrets.putSecret(secret('webhook.b'));
      await secrets.putSecret(secret('access.token-signing-key'));
      assert.deepEqual(await secrets.getSecret('webhook.b'), secret('webhook.b'));
      const replaced = secret('webhook.b', { dataKeyId: 'dk_2', sealed: 'sealed-again', updatedAt: T0 + 5 });
      await secrets.putSecret(replaced);
      assert.deepEqual(await secrets.getSecret('webhook.b'), replaced);
      assert.deepEqual(await secrets.getSecret('access.token-signing-key'), secret('access.token-signing-key'), 'other secrets are untouched');
      assert.equal(await secrets.getSecret('webhook.missing'), undefined);
    });

    it('lists secret names in order, each once', async (t) => {
      const secrets = await withKeys((await make(t)).secrets, dataKey('dk_1'));
      for (const name of ['zeta', 'alpha', 'mid.key', 'alpha']) await secrets.putSecret(secret(name));
      assert.deepEqual(await secrets.listSecretNames(), ['alpha', 'mid.key', 'zeta']);
    });

    it('refuses a secret sealed under an unknown data key', async (t) => {
      const secrets = await withKeys((await make(t)).secrets, dataKey('dk_1'));
      await assert.rejects(secrets.putSecret(secret('webhook.a', { dataKeyId: 'dk_missing' })));
      assert.deepEqual(await secrets.listSecretNames(), []);
    });
  });
}
