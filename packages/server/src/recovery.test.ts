import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { recoverAdmin } from './recovery.js';
import { type TestServer, startTestServer } from './testing/harness.js';
import { describePg, freshPgSchema } from './testing/pg.js';

/** Locks the only admin out (its principal disabled under the API's feet), then recovers it offline. */
async function lockOutAndRecover(s: TestServer, pgSchema?: string): Promise<void> {
  const admin = await s.tokenFor(s.adminKey);
  const me = (await s.api('GET', '/api/v1/auth/whoami', { token: admin })).body.principal;
  await s.server.store.principals.setDisabled(me.id, Date.now());
  assert.equal((await s.api('POST', '/api/v1/auth/token', { body: { key: s.adminKey } })).status, 401);

  const keyFile = join(s.dataDir, 'recovered.key');
  const report = await recoverAdmin(s.server.config, { name: 'admin', keyFile, ...(pgSchema ? { pgSchema } : {}) });
  assert.equal(report.principal.id, me.id);
  assert.equal(report.reenabled, true);
  assert.equal(statSync(keyFile).mode & 0o777, 0o600);
  const token = await s.tokenFor(readFileSync(keyFile, 'utf8').trim());
  assert.equal((await s.api('GET', '/api/v1/auth/whoami', { token })).body.principal.id, me.id);
  assert.equal((await s.api('POST', '/api/v1/auth/token', { body: { key: s.adminKey } })).status, 200, 'the principal is enabled again, so its old key works too');
  const [entry] = await s.server.audit.list({ limit: 1, action: 'user.recover' });
  assert.equal(entry?.actor, 'system:break-glass');
  assert.equal(entry?.details?.reenabled, true);

  await assert.rejects(recoverAdmin(s.server.config, { name: 'admin', keyFile, ...(pgSchema ? { pgSchema } : {}) }), { code: 'BULWARK_ERR_CONFLICT' }, 'an existing key file is never overwritten');
  await s.api('POST', '/api/v1/users', { token, body: { name: 'watcher', role: 'viewer' } });
  await assert.rejects(recoverAdmin(s.server.config, { name: 'watcher', keyFile: `${keyFile}.2`, ...(pgSchema ? { pgSchema } : {}) }), { code: 'BULWARK_ERR_BAD_REQUEST' }, 'a viewer is not made an admin');
}

describe('break-glass admin recovery', () => {
  it('re-enables a disabled admin on a SQLite store while the server runs', async (t) => {
    await lockOutAndRecover(await startTestServer(t));
  });
});

describePg('break-glass admin recovery on PostgreSQL', (url) => {
  it('re-enables a disabled admin on a PostgreSQL store while the server runs', async (t) => {
    const pgSchema = await freshPgSchema(t, url);
    await lockOutAndRecover(await startTestServer(t, { config: { store: url }, pgSchema }), pgSchema);
  });
});
