import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { parseJson, runCli, tempDir } from './support/cli.js';
import { startServer } from './support/server.js';

/**
 * Break-glass through the real `bulwark` command: the only admin locks itself out (revokes
 * its only key) on a running server; `bulwark users recover --data DIR`, run beside it on
 * the server's machine, gives the admin a new key in a 0600 file that the running server
 * accepts at once, and the audit log says who did it.
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- test convenience
async function call(url: string, method: string, path: string, token?: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(url + path, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

const tokenFor = async (url: string, key: string) => call(url, 'POST', '/api/v1/auth/token', undefined, { key });

it("recovers a locked-out admin from the server's machine while the server runs", { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const dataDir = join(dir, 'data');
  const server = await startServer(t, dataDir);
  assert.ok(server.adminKey);
  const admin = (await tokenFor(server.url, server.adminKey)).body.accessToken as string;
  const me = (await call(server.url, 'GET', '/api/v1/auth/whoami', admin)).body;
  assert.equal((await call(server.url, 'POST', `/api/v1/keys/${me.keyId}/revoke`, admin)).status, 200);
  assert.equal((await tokenFor(server.url, server.adminKey)).status, 401, 'locked out: the only admin key is revoked');

  const refused = await runCli(t, ['users', 'recover', '--data', join(dir, 'elsewhere')]);
  assert.equal(refused.code, 1, refused.stderr);
  assert.match(refused.stderr, /^error BULWARK_ERR_NOT_FOUND: no Bulwark store at /m, 'an empty directory is not a store');

  const recovered = await runCli(t, ['users', 'recover', '--data', dataDir, '--json']);
  assert.equal(recovered.code, 0, recovered.stderr);
  const report = parseJson<{ keyFile: string; keyId: string; principal: { id: string }; created: boolean; reenabled: boolean }>(recovered);
  assert.equal(report.principal.id, me.principal.id);
  assert.equal(report.created, false);
  assert.equal(statSync(report.keyFile).mode & 0o777, 0o600);
  assert.ok(report.keyFile.startsWith(dataDir));
  assert.ok(!recovered.stdout.includes('bwk.'), 'the key is in the file, not on the terminal');

  const exchanged = await tokenFor(server.url, readFileSync(report.keyFile, 'utf8').trim());
  assert.equal(exchanged.status, 200, 'the running server takes the new key at once');
  const audit = await call(server.url, 'GET', '/api/v1/audit?action=user.recover', exchanged.body.accessToken);
  assert.equal(audit.status, 200);
  assert.equal(audit.body[0]?.actor, 'system:break-glass');
  assert.equal(audit.body[0]?.target, me.principal.id);
  assert.equal(audit.body[0]?.details?.keyId, report.keyId);
  const verified = await call(server.url, 'POST', '/api/v1/audit/verify', exchanged.body.accessToken);
  assert.equal(verified.body?.ok, true, 'the chain still verifies with the entry written beside the server');

  const human = await runCli(t, ['users', 'recover', '--data', dataDir, '--name', 'someone-new']);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /Admin user someone-new \(usr_\w+\) is created; a new admin key \(\w+\) is in \S+admin-recovery-\S+\.key \(mode 0600\)/);
});
