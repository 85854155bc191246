import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from './config/index.js';
import { type BulwarkServer, buildServer } from './server.js';
import { newAdminKey, tempDir } from './testing/harness.js';

const mode = (path: string) => statSync(path).mode & 0o777;

async function build(t: { after(fn: () => Promise<void>): void }, dataDir: string, env: Record<string, string> = {}): Promise<BulwarkServer> {
  const server = await buildServer(loadConfig({ env, file: { dataDir, log: { level: 'silent' } }, fileName: 'test' }));
  t.after(() => server.stop());
  return server;
}

async function exchange(server: BulwarkServer, key: string): Promise<number> {
  const res = await server.app.inject({ method: 'POST', url: '/api/v1/auth/token', payload: { key } });
  return res.statusCode;
}

describe('the first admin key', () => {
  it('is written once to <data>/admin.key, mode 0600 even under umask 0, and works', async (t) => {
    const dataDir = tempDir(t);
    const umask = process.umask(0);
    let first: BulwarkServer;
    try {
      first = await build(t, dataDir);
    } finally {
      process.umask(umask);
    }
    const path = join(dataDir, 'admin.key');
    assert.equal(first.firstStart.adminKeyFile, path);
    assert.equal(mode(path), 0o600);
    const text = readFileSync(path, 'utf8');
    assert.equal(text, `${first.firstStart.adminKey}\n`);
    assert.equal(await exchange(first, text.trim()), 200);
    assert.deepEqual(
      readdirSync(dataDir).filter((f) => f.endsWith('.tmp')),
      [],
      'no temporary file is left behind',
    );
    const bootstrap = await first.audit.list({ action: 'platform.bootstrap', limit: 10 });
    assert.equal(bootstrap[0]?.details?.adminKeyFile, path);
    await first.stop();

    // The operator moves the key away; a later start neither writes nor reports one.
    writeFileSync(path, 'moved to the password manager\n');
    const second = await build(t, dataDir);
    assert.equal(second.firstStart.adminKeyFile, undefined);
    assert.equal(second.firstStart.adminKey, undefined);
    assert.equal(readFileSync(path, 'utf8'), 'moved to the password manager\n');
  });

  it('is not written when BULWARK_BOOTSTRAP_ADMIN_KEY provides it', async (t) => {
    const dataDir = tempDir(t);
    const key = newAdminKey();
    const server = await build(t, dataDir, { BULWARK_BOOTSTRAP_ADMIN_KEY: key });
    assert.equal(server.firstStart.adminKey, key);
    assert.equal(server.firstStart.adminKeyFile, undefined);
    assert.equal(existsSync(join(dataDir, 'admin.key')), false);
    assert.equal(await exchange(server, key), 200);
  });
});
