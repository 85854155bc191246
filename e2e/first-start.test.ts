import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { tempDir } from './support/cli.js';
import { KEY_PATTERN, startServer } from './support/server.js';

/**
 * The first admin key never goes through standard output or standard error, which end up in
 * log files that others can read: `bulwark start` writes it to a 0600 file in the data
 * directory and prints only the path and how to use it.
 */

const KEY_TEXT = /bwk\./;
const mode = (path: string) => statSync(path).mode & 0o777;

async function tokenStatus(url: string, key: string): Promise<number> {
  const res = await fetch(`${url}/api/v1/auth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key }) });
  await res.body?.cancel();
  return res.status;
}

describe('the first start of bulwark start', () => {
  it('writes the admin key to <data>/admin.key (0600) and prints only its path; a later start prints no key file', { timeout: 120_000 }, async (t) => {
    const dataDir = join(tempDir(t), 'data');
    const path = join(dataDir, 'admin.key');
    const first = await startServer(t, dataDir);
    const output = () => first.process.stdout + first.process.stderr;
    assert.doesNotMatch(output(), KEY_TEXT, 'no key text on standard output or standard error');
    assert.equal(first.adminKeyFile, path, first.banner);
    assert.ok(first.banner.includes(`--key "$(cat ${path})"`), first.banner);
    assert.equal(mode(path), 0o600);
    const key = readFileSync(path, 'utf8').trim();
    assert.match(key, new RegExp(`^${KEY_PATTERN.source}$`));
    assert.equal(await tokenStatus(first.url, key), 200);
    const ended = await first.process.stop('SIGTERM');
    assert.equal(ended.code, 0, ended.stderr);
    assert.doesNotMatch(ended.stdout + ended.stderr, KEY_TEXT, 'nor later in the run');

    const second = await startServer(t, dataDir);
    assert.equal(second.adminKeyFile, undefined, second.banner);
    assert.doesNotMatch(second.process.stdout + second.process.stderr, /admin\.key|ADMIN API KEY|bwk\./, second.banner);
    assert.match(second.banner, /--key <your API key>/);
    assert.equal(readFileSync(path, 'utf8').trim(), key, 'the file is not rewritten');
    assert.equal(mode(path), 0o600);
    assert.equal(await tokenStatus(second.url, key), 200);
  });

  it('writes no file and prints no key when BULWARK_BOOTSTRAP_ADMIN_KEY provides it', { timeout: 60_000 }, async (t) => {
    const dataDir = join(tempDir(t), 'data');
    const key = `bwk.key_e2efirststart.${'A'.repeat(43)}`;
    const s = await startServer(t, dataDir, { env: { BULWARK_BOOTSTRAP_ADMIN_KEY: key } });
    assert.doesNotMatch(s.process.stdout + s.process.stderr, KEY_TEXT);
    assert.match(s.banner, /BULWARK_BOOTSTRAP_ADMIN_KEY/);
    assert.equal(s.adminKeyFile, undefined);
    assert.equal(existsSync(join(dataDir, 'admin.key')), false);
    assert.equal(await tokenStatus(s.url, key), 200);
  });
});
