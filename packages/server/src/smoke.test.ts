import assert from 'node:assert/strict';
import { it } from 'node:test';
import { startTestServer } from './testing/harness.js';

it('serves health, issues a token and answers whoami', async (t) => {
  const s = await startTestServer(t);
  assert.equal((await s.api('GET', '/healthz')).status, 200);
  const token = await s.tokenFor(s.adminKey);
  const me = await s.api('GET', '/api/v1/auth/whoami', { token });
  assert.equal(me.status, 200, me.text);
  assert.equal(me.body.principal.name, 'admin');
});
