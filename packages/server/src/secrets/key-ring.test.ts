import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type TestContext, describe, it } from 'node:test';
import { ManualClock, randomIds, silentLogger } from '@bulwark/core';
import { type Store, openStore } from '../store/index.js';
import { startTestServer, tempDir } from '../testing/harness.js';
import { KEY_BYTES, keyFingerprint, seal } from './envelope.js';
import type { MasterKeySource, SecretRepository } from './secrets.js';
import { SecretVault, type VaultDeps } from './vault.js';

/** The master-key ring of a node: the current key and the next one, on a real SQLite store. */

async function sqliteStore(t: TestContext): Promise<Store> {
  const store = await openStore({ engine: 'sqlite', location: join(tempDir(t), 'bulwark.db') }, new ManualClock());
  t.after(() => store.close());
  return store;
}

function vaultOn(repo: SecretRepository, source: MasterKeySource, extra: Partial<VaultDeps> = {}): Promise<SecretVault> {
  return SecretVault.open(repo, source, { clock: new ManualClock(), ids: randomIds, log: silentLogger, ...extra });
}

const newKey = () => randomBytes(KEY_BYTES);
const ring = (key: Buffer, next?: Buffer): MasterKeySource => ({ kind: 'provided', key, ...(next ? { next } : {}) });
const code = (expected: string) => (err: { code?: string }) => err.code === expected;

async function fill(vault: SecretVault, n: number): Promise<Map<string, string>> {
  const values = new Map<string, string>();
  for (let i = 0; i < n; i += 1) {
    const v = randomBytes(12).toString('hex');
    values.set(`test.s${i}`, v);
    await vault.put(`test.s${i}`, Buffer.from(v));
  }
  return values;
}

async function assertReads(vault: SecretVault, values: Map<string, string>): Promise<void> {
  for (const [name, v] of values) assert.equal((await vault.get(name))?.toString(), v, name);
}

describe('master key ring', () => {
  it('reads under the current key, rotates to the next one, and then needs only the new key', async (t) => {
    const store = await sqliteStore(t);
    const [k1, k2] = [newKey(), newKey()];
    const [id1, id2] = [keyFingerprint(k1), keyFingerprint(k2)];
    const values = await fill(await vaultOn(store.secrets, ring(k1)), 5);

    const both = await vaultOn(store.secrets, ring(k1, k2));
    assert.deepEqual(await both.status(), { masterKeyId: id1, masterKeyIds: [id1, id2], nextMasterKeyId: id2, dataKeys: { [id1]: 1 } });
    await assertReads(both, values);
    const sealedValue = both.encryptValue(Buffer.from('"before"'), 'dev-1/pin');

    const report = await both.rotateMasterKey();
    assert.deepEqual(report, { previousMasterKeyId: id1, masterKeyId: id2, dataKeysRewrapped: 1, keySource: 'next' });
    assert.deepEqual((await both.status()).dataKeys, { [id2]: 1 });
    await assertReads(both, values);
    assert.deepEqual(await both.rotateMasterKey(), { previousMasterKeyId: id2, masterKeyId: id2, dataKeysRewrapped: 0, keySource: 'next' }, 'a second rotation changes nothing');

    const onlyNew = await vaultOn(store.secrets, ring(k2));
    await assertReads(onlyNew, values);
    assert.equal((await onlyNew.decryptValue(sealedValue, 'dev-1/pin')).toString(), '"before"');
    assert.equal(onlyNew.masterKeyId, id2);
  });

  it('refuses to start with only the old key after the rotation, naming the key it lacks, and counts it', async (t) => {
    const store = await sqliteStore(t);
    const [k1, k2] = [newKey(), newKey()];
    await fill(await vaultOn(store.secrets, ring(k1)), 2);
    await (await vaultOn(store.secrets, ring(k1, k2))).rotateMasterKey();
    const missing: string[] = [];
    await assert.rejects(vaultOn(store.secrets, ring(k1), { onMissingKey: (id) => missing.push(id) }), (err: { code?: string; message: string }) => {
      assert.equal(err.code, 'BULWARK_ERR_MASTER_KEY_INVALID');
      assert.match(err.message, new RegExp(`wrapped by master key ${keyFingerprint(k2)}, which this node does not hold \\(it holds ${keyFingerprint(k1)}\\)`));
      assert.ok(!err.message.includes(k1.toString('base64')) && !err.message.includes(k2.toString('hex')), 'never the key itself');
      return true;
    });
    assert.deepEqual(missing, [keyFingerprint(k2)]);
  });

  it('fails closed on a running node: a data key under a key it does not hold is refused with its id, and reported as missing', async (t) => {
    const store = await sqliteStore(t);
    const [k1, foreign] = [newKey(), newKey()];
    const missing: string[] = [];
    const vault = await vaultOn(store.secrets, ring(k1), { onMissingKey: (id) => missing.push(id) });
    assert.deepEqual(await vault.missingMasterKeys(), []);
    // Another node, holding a key this one lacks, added a data key and sealed a value with it.
    const dataKey = newKey();
    await store.secrets.insertDataKey({ id: 'dk_foreign', wrapped: seal(foreign, dataKey, 'data-key:dk_foreign'), masterKeyId: keyFingerprint(foreign), createdAt: 1, retiredAt: null });
    const value = `enc:dk_foreign:${seal(dataKey, Buffer.from('"x"'), 'value:dev-1/pin')}`;
    await assert.rejects(vault.decryptValue(value, 'dev-1/pin'), (err: { code?: string; message: string }) => err.code === 'BULWARK_ERR_MASTER_KEY_INVALID' && err.message.includes(`master key ${keyFingerprint(foreign)}, which this node does not hold`));
    assert.deepEqual(missing, [keyFingerprint(foreign)]);
    assert.deepEqual(await vault.missingMasterKeys(), [keyFingerprint(foreign)]);
  });

  it('wraps new data keys under the current key until the rotation, under the next one after it', async (t) => {
    const [k1, k2] = [newKey(), newKey()];
    // A new store, while some nodes may not hold the next key yet: the current key.
    const fresh = await sqliteStore(t);
    await vaultOn(fresh.secrets, ring(k1, k2));
    assert.deepEqual(
      (await fresh.secrets.listDataKeys()).map((k) => k.masterKeyId),
      [keyFingerprint(k1)],
    );
    // A store already rotated: a node started with both keys keeps to the new one.
    await (await vaultOn(fresh.secrets, ring(k1, k2))).rotateMasterKey();
    assert.equal((await vaultOn(fresh.secrets, ring(k1, k2))).masterKeyId, keyFingerprint(k2));
  });

  it('refuses a rotation while a live node lacks the next key, and changes nothing', async (t) => {
    const store = await sqliteStore(t);
    const [k1, k2] = [newKey(), newKey()];
    const asked: string[] = [];
    const vault = await vaultOn(store.secrets, ring(k1, k2), { nodesLacking: async (id) => (asked.push(id), ['node-c']) });
    const values = await fill(vault, 2);
    await assert.rejects(vault.rotateMasterKey(), (err: { code?: string; message: string; details?: unknown }) => {
      assert.equal(err.code, 'BULWARK_ERR_MASTER_KEY_NOT_HELD');
      assert.match(err.message, /node-c/);
      assert.deepEqual(err.details, { masterKeyId: keyFingerprint(k2), nodes: ['node-c'] });
      return true;
    });
    assert.deepEqual(asked, [keyFingerprint(k2)]);
    assert.deepEqual((await vault.status()).dataKeys, { [keyFingerprint(k1)]: 1 });
    await assertReads(await vaultOn(store.secrets, ring(k1)), values);
  });

  it('resumes a rotation whose transaction failed: the store stays under the old key, and asking again finishes it', async (t) => {
    const store = await sqliteStore(t);
    const [k1, k2] = [newKey(), newKey()];
    let fail = true;
    const flaky: SecretRepository = Object.assign(Object.create(store.secrets) as SecretRepository, {
      rewrapDataKeys: async (rewrapped: Parameters<SecretRepository['rewrapDataKeys']>[0]) => {
        if (fail) throw new Error('connection lost');
        await store.secrets.rewrapDataKeys(rewrapped);
      },
    });
    const vault = await vaultOn(flaky, ring(k1, k2));
    const values = await fill(vault, 3);
    await assert.rejects(vault.rotateMasterKey(), /connection lost/);
    assert.deepEqual((await vault.status()).dataKeys, { [keyFingerprint(k1)]: 1 });
    await assertReads(await vaultOn(store.secrets, ring(k1)), values);
    fail = false;
    assert.equal((await vault.rotateMasterKey()).dataKeysRewrapped, 1);
    await assertReads(await vaultOn(store.secrets, ring(k2)), values);
  });

  it('keeps refusing to rotate a key from BULWARK_MASTER_KEY without a next key', async (t) => {
    const store = await sqliteStore(t);
    const vault = await vaultOn(store.secrets, ring(newKey()));
    await assert.rejects(vault.rotateMasterKey(), code('BULWARK_ERR_MASTER_KEY_EXTERNAL'));
  });

  it('refuses to rotate a generated key file while other live nodes exist, before writing any key', async (t) => {
    const store = await sqliteStore(t);
    const path = join(tempDir(t), 'master.key');
    const vault = await vaultOn(store.secrets, { kind: 'file', path }, { nodesLacking: async () => ['node-b'] });
    await assert.rejects(vault.rotateMasterKey(), (err: { code?: string; message: string }) => err.code === 'BULWARK_ERR_MASTER_KEY_NOT_HELD' && /on this node only/.test(err.message));
    assert.ok(!existsSync(`${path}.next`));
    assert.equal((await vault.status()).masterKeyIds.length, 1);
    const alone = await vaultOn(store.secrets, { kind: 'file', path }, { nodesLacking: async () => [] });
    assert.equal((await alone.rotateMasterKey()).keySource, 'file');
  });
});

describe('a running node that lacks a master key', () => {
  it('answers /readyz 503 (secrets: master key missing) and counts each refused data key by key id', async (t) => {
    const s = await startTestServer(t, { env: { BULWARK_MASTER_KEY: newKey().toString('hex') } });
    assert.deepEqual((await s.api('GET', '/readyz')).body, { status: 'ready', checks: { store: 'ok (sqlite)' } });
    const [foreign, dataKey] = [newKey(), newKey()];
    const foreignId = keyFingerprint(foreign);
    await s.server.store.secrets.insertDataKey({ id: 'dk_foreign', wrapped: seal(foreign, dataKey, 'data-key:dk_foreign'), masterKeyId: foreignId, createdAt: 1, retiredAt: null });
    const ready = await s.api('GET', '/readyz');
    assert.equal(ready.status, 503);
    assert.deepEqual(ready.body.checks, { store: 'ok (sqlite)', secrets: 'master key missing' });
    const value = `enc:dk_foreign:${seal(dataKey, Buffer.from('1'), 'value:d/f')}`;
    await assert.rejects(s.server.vault.decryptValue(value, 'd/f'), code('BULWARK_ERR_MASTER_KEY_INVALID'));
    await assert.rejects(s.server.vault.decryptValue(value, 'd/f'), code('BULWARK_ERR_MASTER_KEY_INVALID'));
    const metrics = (await s.api('GET', '/metrics')).text;
    assert.match(metrics, new RegExp(`^bulwark_master_key_missing_total\\{master_key_id="${foreignId}"\\} 2$`, 'm'));
  });
});
