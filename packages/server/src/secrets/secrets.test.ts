import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { randomBytes } from 'node:crypto';
import { tempDir, newAdminKey, startTestServer } from '../testing/harness.js';

describe('secrets at rest', () => {
  it('creates the master key file with mode 0600 on first start and never replaces it', async (t) => {
    const dataDir = tempDir(t);
    const adminKey = newAdminKey();
    const first = await startTestServer(t, { dataDir, adminKey, keepRunning: true });
    const path = join(dataDir, 'master.key');
    assert.equal(first.server.firstStart.masterKeyCreatedAt, path);
    assert.ok(first.server.firstStart.adminKey);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const before = readFileSync(path, 'utf8');
    await first.server.stop();
    const second = await startTestServer(t, { dataDir, adminKey });
    assert.equal(second.server.firstStart.masterKeyCreatedAt, undefined);
    assert.equal(second.server.firstStart.adminKey, undefined, 'the admin key is created once');
    assert.equal(readFileSync(path, 'utf8'), before);
  });

  it('seals every stored secret: nothing readable in the database file', async (t) => {
    const s = await startTestServer(t);
    const plaintext = `webhook-secret-${randomBytes(8).toString('hex')}`;
    await s.server.vault.put('test.webhook', Buffer.from(plaintext));
    assert.equal((await s.server.vault.get('test.webhook'))?.toString(), plaintext);
    await s.server.stop();
    for (const file of ['bulwark.db', 'bulwark.db-wal']) {
      const p = join(s.dataDir, file);
      if (existsSync(p)) assert.ok(!readFileSync(p).includes(plaintext), `${file} holds the plaintext`);
    }
  });

  it('rotates the master key on a running server, keeping every secret and every token valid, and after a restart', async (t) => {
    const dataDir = tempDir(t);
    const adminKey = newAdminKey();
    const s = await startTestServer(t, { dataDir, adminKey, keepRunning: true });
    const admin = await s.tokenFor(adminKey);
    const values = new Map<string, string>();
    for (let i = 0; i < 20; i += 1) {
      const v = randomBytes(24).toString('base64');
      values.set(`test.secret-${i}`, v);
      await s.server.vault.put(`test.secret-${i}`, Buffer.from(v));
    }
    const oldKeyFile = readFileSync(join(dataDir, 'master.key'), 'utf8');
    const rotated = await s.api('POST', '/api/v1/system/master-key/rotate', { token: admin });
    assert.equal(rotated.status, 200, rotated.text);
    assert.notEqual(rotated.body.masterKeyId, rotated.body.previousMasterKeyId);
    assert.ok(rotated.body.dataKeysRewrapped >= 1);
    assert.notEqual(readFileSync(join(dataDir, 'master.key'), 'utf8'), oldKeyFile);
    assert.equal(statSync(join(dataDir, 'master.key')).mode & 0o777, 0o600);
    assert.ok(!existsSync(join(dataDir, 'master.key.next')));
    for (const [name, v] of values) assert.equal((await s.server.vault.get(name))?.toString(), v);
    assert.equal((await s.api('GET', '/api/v1/auth/whoami', { token: admin })).status, 200, 'tokens survive rotation');
    await s.server.stop();

    const again = await startTestServer(t, { dataDir, adminKey });
    for (const [name, v] of values) assert.equal((await again.server.vault.get(name))?.toString(), v);
    assert.equal((await again.api('GET', '/api/v1/auth/whoami', { token: admin })).status, 200, 'tokens survive a restart');
    const info = await again.api('GET', '/api/v1/system/master-key', { token: admin });
    assert.equal(info.body.masterKeyId, rotated.body.masterKeyId);
    const audit = await again.api('GET', '/api/v1/audit?action=secrets.rotate-master-key', { token: admin });
    assert.equal(audit.body.length, 1);
  });

  it('rotates the access-token signing key without logging anyone out, and keeps the new one after a restart', async (t) => {
    const dataDir = tempDir(t);
    const adminKey = newAdminKey();
    const s = await startTestServer(t, { dataDir, adminKey, keepRunning: true });
    const before = await s.tokenFor(adminKey);
    const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { tk?: string };
    const firstKey = claimsOf(before).tk;
    assert.ok(firstKey, 'tokens name their signing key');
    const rotated = await s.api('POST', '/api/v1/system/token-keys/rotate', { token: before });
    assert.equal(rotated.status, 200, rotated.text);
    assert.notEqual(rotated.body.current, firstKey);
    assert.deepEqual(
      rotated.body.accepted.map((k: { id: string }) => k.id),
      [rotated.body.current, firstKey],
    );
    assert.equal((await s.api('GET', '/api/v1/auth/whoami', { token: before })).status, 200, 'a token of the previous key still works');
    const after = await s.tokenFor(adminKey);
    assert.equal(claimsOf(after).tk, rotated.body.current, 'new tokens are signed with the new key');
    const tampered = `${after.split('.').slice(0, 2).join('.')}.${Buffer.alloc(32).toString('base64url')}`;
    assert.equal((await s.api('GET', '/api/v1/auth/whoami', { token: tampered })).status, 401);
    await s.server.stop();

    const again = await startTestServer(t, { dataDir, adminKey });
    assert.equal((await again.api('GET', '/api/v1/auth/whoami', { token: before })).status, 200, 'both keys verify after a restart');
    assert.equal(claimsOf(await again.tokenFor(adminKey)).tk, rotated.body.current);
    const status = await again.api('GET', '/api/v1/system/token-keys', { token: after });
    assert.equal(status.body.current, rotated.body.current);
    const audit = await again.api('GET', '/api/v1/audit?action=secrets.rotate-token-key', { token: after });
    assert.equal(audit.body[0]?.target, rotated.body.current);
  });

  it('finishes a rotation interrupted after the store was re-wrapped', async (t) => {
    const dataDir = tempDir(t);
    const adminKey = newAdminKey();
    const s = await startTestServer(t, { dataDir, adminKey, keepRunning: true });
    await s.server.vault.put('test.keep', Buffer.from('still here'));
    const path = join(dataDir, 'master.key');
    copyFileSync(path, `${path}.old`);
    await s.server.vault.rotateMasterKey();
    await s.server.stop();
    // The crash: the new key never got renamed into place, the old one is still there.
    renameSync(path, `${path}.next`);
    renameSync(`${path}.old`, path);
    const again = await startTestServer(t, { dataDir, adminKey });
    assert.equal((await again.server.vault.get('test.keep'))?.toString(), 'still here');
    assert.ok(!existsSync(`${path}.next`));
  });

  it('forgets a rotation interrupted before the store was re-wrapped', async (t) => {
    const dataDir = tempDir(t);
    const adminKey = newAdminKey();
    const s = await startTestServer(t, { dataDir, adminKey, keepRunning: true });
    await s.server.vault.put('test.keep', Buffer.from('still here'));
    await s.server.stop();
    const path = join(dataDir, 'master.key');
    // The crash: a new key was written beside the old one, the store never changed.
    writeFileSync(`${path}.next`, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
    const again = await startTestServer(t, { dataDir, adminKey });
    assert.equal((await again.server.vault.get('test.keep'))?.toString(), 'still here');
    assert.ok(!existsSync(`${path}.next`));
  });

  it('refuses to start with a master key that does not match the store', async (t) => {
    const dataDir = tempDir(t);
    const adminKey = newAdminKey();
    const s = await startTestServer(t, { dataDir, adminKey, keepRunning: true });
    await s.server.stop();
    await assert.rejects(startTestServer(t, { dataDir, adminKey, env: { BULWARK_MASTER_KEY: randomBytes(32).toString('base64') } }), (err: { code?: string }) => err.code === 'BULWARK_ERR_MASTER_KEY_INVALID');
  });

  it('uses a master key from BULWARK_MASTER_KEY without writing it to disk, and refuses to rotate it', async (t) => {
    const dataDir = tempDir(t);
    const key = randomBytes(32).toString('hex');
    const s = await startTestServer(t, { dataDir, env: { BULWARK_MASTER_KEY: key } });
    assert.ok(!existsSync(join(dataDir, 'master.key')));
    const admin = await s.tokenFor(s.adminKey);
    const res = await s.api('POST', '/api/v1/system/master-key/rotate', { token: admin });
    assert.equal(res.status, 409);
    assert.equal(res.body.error.code, 'BULWARK_ERR_MASTER_KEY_EXTERNAL');
  });

  it('detects a sealed secret moved under another name', async (t) => {
    const s = await startTestServer(t);
    await s.server.vault.put('test.a', Buffer.from('A'));
    const a = await s.server.store.secrets.getSecret('test.a');
    assert.ok(a);
    await s.server.store.secrets.putSecret({ ...a, name: 'test.b' });
    await assert.rejects(s.server.vault.get('test.b'), (err: { code?: string }) => err.code === 'BULWARK_ERR_SECRET_CORRUPT');
  });
});
