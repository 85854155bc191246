import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type TestServer, startTestServer } from '../testing/harness.js';

/** A principal made by the admin, with a key and an access token. */
async function principalWith(s: TestServer, admin: string, body: Record<string, unknown>): Promise<{ id: string; keyId: string; key: string; token: string }> {
  const p = await s.api('POST', '/api/v1/users', { token: admin, body });
  assert.equal(p.status, 201, p.text);
  const k = await s.api('POST', '/api/v1/keys', { token: admin, body: { name: 'k', principalId: p.body.id } });
  assert.equal(k.status, 201, k.text);
  return { id: p.body.id, keyId: k.body.apiKey.id, key: k.body.key, token: await s.tokenFor(k.body.key) };
}

async function adminId(s: TestServer, admin: string): Promise<string> {
  return (await s.api('GET', '/api/v1/auth/whoami', { token: admin })).body.principal.id as string;
}

describe('acting on another principal needs every scope it holds', () => {
  it('a users:write service account can neither disable nor re-enable an admin', async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    const rootId = await adminId(s, admin);
    const bot = await principalWith(s, admin, { name: 'user-bot', kind: 'service', scopes: ['users:read', 'users:write'] });
    const disable = await s.api('POST', `/api/v1/users/${rootId}/disable`, { token: bot.token });
    assert.equal(disable.status, 403, disable.text);
    assert.equal(disable.body.error.code, 'BULWARK_ERR_FORBIDDEN');
    assert.equal(disable.body.error.details.reason, 'target_outranks_caller');
    assert.equal((await s.api('GET', '/api/v1/auth/whoami', { token: admin })).status, 200, 'the admin still works');

    // A second admin, disabled by the first: the bot cannot bring it (and its key with *) back.
    const second = await principalWith(s, admin, { name: 'admin2', role: 'admin' });
    assert.equal((await s.api('POST', `/api/v1/users/${second.id}/disable`, { token: admin })).status, 200);
    const enable = await s.api('POST', `/api/v1/users/${second.id}/enable`, { token: bot.token });
    assert.equal(enable.status, 403, enable.text);
    assert.equal((await s.api('POST', '/api/v1/auth/token', { body: { key: second.key } })).status, 401, 'the old admin key stays dead');

    // The same holds one rank down: an operator holds scopes the bot lacks; a peer does not.
    const op = await principalWith(s, admin, { name: 'op1', role: 'operator' });
    assert.equal((await s.api('POST', `/api/v1/users/${op.id}/disable`, { token: bot.token })).status, 403);
    const peer = await principalWith(s, admin, { name: 'peer-bot', kind: 'service', scopes: ['users:read'] });
    assert.equal((await s.api('POST', `/api/v1/users/${peer.id}/disable`, { token: bot.token })).status, 200, "a principal with a subset of the caller's scopes can be managed");
    assert.equal((await s.api('POST', `/api/v1/users/${peer.id}/enable`, { token: bot.token })).status, 200);

    const denied = await s.server.audit.list({ limit: 20, action: 'user.disable', result: 'denied' });
    assert.ok(
      denied.some((e) => e.actor === bot.id && e.target === rootId),
      'the refused attempt is audited',
    );
  });

  it('a keys:write service account can neither mint nor revoke a key of a principal that outranks it', async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    const rootId = await adminId(s, admin);
    const minter = await principalWith(s, admin, { name: 'key-bot', kind: 'service', scopes: ['keys:self', 'keys:read', 'keys:write', 'users:read'] });
    const narrow = await s.api('POST', '/api/v1/keys', { token: minter.token, body: { name: 'x', principalId: rootId, scopes: ['users:read'] } });
    assert.equal(narrow.status, 403, "not even a key narrowed to the caller's own scopes");
    const rootKeys = await s.api('GET', `/api/v1/keys?principalId=${rootId}`, { token: minter.token });
    assert.equal(rootKeys.status, 200);
    const revoke = await s.api('POST', `/api/v1/keys/${rootKeys.body[0].id}/revoke`, { token: minter.token });
    assert.equal(revoke.status, 403, revoke.text);
    assert.equal((await s.api('GET', '/api/v1/auth/whoami', { token: admin })).status, 200);
    const own = await s.api('POST', '/api/v1/keys', { token: minter.token, body: { name: 'mine' } });
    assert.equal(own.status, 201, 'its own keys are its own business');
    assert.equal((await s.api('POST', `/api/v1/keys/${own.body.apiKey.id}/revoke`, { token: minter.token })).status, 200);
  });

  it('never disables the last enabled admin, even when two admins disable each other at once', async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    const rootId = await adminId(s, admin);
    const star = await principalWith(s, admin, { name: 'star-bot', kind: 'service', scopes: ['*'] });
    const last = await s.api('POST', `/api/v1/users/${rootId}/disable`, { token: star.token });
    assert.equal(last.status, 409, last.text);
    assert.equal(last.body.error.code, 'BULWARK_ERR_LAST_ADMIN');

    const second = await principalWith(s, admin, { name: 'admin2', role: 'admin' });
    const [a, b] = await Promise.all([s.api('POST', `/api/v1/users/${second.id}/disable`, { token: admin }), s.api('POST', `/api/v1/users/${rootId}/disable`, { token: second.token })]);
    // One wins; the other is refused as the last admin (409) or, if the winner's change
    // landed before it was even authenticated, as a disabled caller (401).
    const statuses = [a.status, b.status].sort();
    assert.equal(statuses[0], 200, `${a.text} ${b.text}`);
    assert.ok(statuses[1] === 409 || statuses[1] === 401, `${a.text} ${b.text}`);
    const users = (await s.api('GET', '/api/v1/users', { token: star.token })).body as { id: string; role: string | null; disabledAt: number | null }[];
    assert.equal(users.filter((u) => u.role === 'admin' && u.disabledAt === null).length, 1);

    // Both changes reaching the check at once: they run one at a time, so one is refused.
    for (const u of users) if (u.role === 'admin' && u.disabledAt !== null) await s.server.access.setDisabled(u.id, false);
    const settled = await Promise.allSettled([s.server.access.setDisabled(second.id, true), s.server.access.setDisabled(rootId, true)]);
    assert.equal(settled.filter((r) => r.status === 'fulfilled').length, 1);
    const refused = settled.find((r) => r.status === 'rejected');
    assert.equal((refused?.reason as { code?: string } | undefined)?.code, 'BULWARK_ERR_LAST_ADMIN');
  });

  it('never limits the last whole-fleet admin to device groups, and nobody changes their own device groups', async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    const rootId = await adminId(s, admin);
    assert.equal((await s.api('POST', '/api/v1/groups', { token: admin, body: { id: 'site-a', kind: 'dynamic', query: { model: ['gw-a'] } } })).status, 201);
    const star = await principalWith(s, admin, { name: 'star-bot', kind: 'service', scopes: ['*'] });
    const own = await s.api('PUT', `/api/v1/users/${rootId}/device-groups`, { token: admin, body: { deviceGroups: ['site-a'] } });
    assert.equal(own.status, 400, own.text);
    assert.match(own.body.error.message, /your own device groups/);
    const last = await s.api('PUT', `/api/v1/users/${rootId}/device-groups`, { token: star.token, body: { deviceGroups: ['site-a'] } });
    assert.equal(last.status, 409, last.text);
    assert.equal(last.body.error.code, 'BULWARK_ERR_LAST_ADMIN');
    assert.equal((await s.api('GET', '/api/v1/devices', { token: admin })).status, 200, 'the admin still has the whole fleet');

    // With a second whole-fleet admin, one of them may be limited; then the other is the last.
    const second = await principalWith(s, admin, { name: 'admin2', role: 'admin' });
    assert.equal((await s.api('PUT', `/api/v1/users/${second.id}/device-groups`, { token: admin, body: { deviceGroups: ['site-a'] } })).status, 200);
    assert.equal((await s.api('PUT', `/api/v1/users/${rootId}/device-groups`, { token: star.token, body: { deviceGroups: ['site-a'] } })).status, 409);
    assert.equal((await s.api('PUT', `/api/v1/users/${second.id}/device-groups`, { token: admin, body: { deviceGroups: null } })).status, 200);
    // Two limits at once: they run one at a time, so one is refused.
    const settled = await Promise.allSettled([s.server.access.setDeviceGroups(second.id, ['site-a']), s.server.access.setDeviceGroups(rootId, ['site-a'])]);
    assert.equal(settled.filter((r) => r.status === 'fulfilled').length, 1);
    assert.equal((settled.find((r): r is PromiseRejectedResult => r.status === 'rejected')?.reason as { code?: string } | undefined)?.code, 'BULWARK_ERR_LAST_ADMIN');
  });
});
