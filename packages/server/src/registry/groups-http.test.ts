import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startTestServer } from '../testing/harness.js';

describe('device groups over HTTP', () => {
  it('makes static and dynamic groups, lists their devices, and refuses bad input with nothing half done', async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    for (let i = 0; i < 6; i += 1) {
      const res = await s.api('POST', '/api/v1/devices', { token: admin, body: { id: `gw-${i}`, model: i < 4 ? 'gw-b' : 'gw-a', location: 'site-7', tags: i % 2 ? ['canary'] : [] } });
      assert.equal(res.status, 201, res.text);
    }
    const ids = async (query: string) => {
      const res = await s.api('GET', `/api/v1/devices?${query}`, { token: admin });
      assert.equal(res.status, 200, res.text);
      return (res.body as { id: string }[]).map((d) => d.id);
    };

    // Dynamic: the gateways of model B on site 7; a device joins when it changes.
    const dyn = await s.api('POST', '/api/v1/groups', { token: admin, body: { id: 'site7-b', kind: 'dynamic', description: 'model B on site 7', query: { model: ['gw-b'], location: ['site-7'] } } });
    assert.equal(dyn.status, 201, dyn.text);
    assert.deepEqual(await ids('group=site7-b'), ['gw-0', 'gw-1', 'gw-2', 'gw-3']);
    assert.deepEqual(await ids('group=site7-b&tag=canary'), ['gw-1', 'gw-3'], 'a group narrows like any other filter');
    assert.equal((await s.api('PATCH', '/api/v1/devices/gw-5', { token: admin, body: { model: 'gw-b' } })).status, 200);
    assert.equal((await s.api('GET', '/api/v1/groups/site7-b', { token: admin })).body.deviceCount, 5);
    const patched = await s.api('PATCH', '/api/v1/groups/site7-b', { token: admin, body: { query: { model: ['gw-b'], tags: ['canary'] } } });
    assert.equal(patched.status, 200, patched.text);
    assert.deepEqual(await ids('group=site7-b'), ['gw-1', 'gw-3', 'gw-5']);

    // Static: explicit members, all or none.
    const stat = await s.api('POST', '/api/v1/groups', { token: admin, body: { id: 'canary-set', kind: 'static', members: ['gw-0', 'gw-4'] } });
    assert.equal(stat.status, 201, stat.text);
    const unknown = await s.api('POST', '/api/v1/groups/canary-set/members/add', { token: admin, body: { deviceIds: ['gw-1', 'ghost'] } });
    assert.equal(unknown.status, 404);
    assert.match(unknown.body.error.message, /no such devices: ghost \(nothing was added\)/);
    assert.deepEqual(await ids('group=canary-set'), ['gw-0', 'gw-4'], 'gw-1 was not added either');
    assert.deepEqual((await s.api('POST', '/api/v1/groups/canary-set/members/add', { token: admin, body: { deviceIds: ['gw-1', 'gw-0'] } })).body, { added: 1 });
    assert.deepEqual((await s.api('POST', '/api/v1/groups/canary-set/members/remove', { token: admin, body: { deviceIds: ['gw-0'] } })).body, { removed: 1 });
    assert.deepEqual(await ids('group=canary-set'), ['gw-1', 'gw-4']);
    const noGroupMade = await s.api('POST', '/api/v1/groups', { token: admin, body: { id: 'half', kind: 'static', members: ['gw-0', 'ghost'] } });
    assert.equal(noGroupMade.status, 404);
    assert.equal((await s.api('GET', '/api/v1/groups/half', { token: admin })).status, 404, 'a group whose members were refused is not made');

    // Bad input: clear errors.
    const bad = await s.api('POST', '/api/v1/groups', { token: admin, body: { id: 'bad', kind: 'dynamic', query: { state: ['gone'], healthBelow: 500 } } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'BULWARK_ERR_VALIDATION');
    const empty = await s.api('POST', '/api/v1/groups', { token: admin, body: { id: 'all', kind: 'dynamic', query: {} } });
    assert.equal(empty.status, 400);
    assert.match(empty.body.error.message, /at least one criterion/);
    const both = await s.api('POST', '/api/v1/groups', { token: admin, body: { id: 'odd', kind: 'dynamic', query: { online: true, offlineForMs: 60_000 } } });
    assert.match(both.body.error.message, /online and offlineForMs cannot both hold/);
    assert.equal((await s.api('POST', '/api/v1/groups', { token: admin, body: { id: 'site7-b', kind: 'static' } })).status, 409);
    assert.equal((await s.api('POST', '/api/v1/groups', { token: admin, body: { id: '-x', kind: 'static' } })).status, 400);
    assert.equal((await s.api('POST', '/api/v1/groups/site7-b/members/add', { token: admin, body: { deviceIds: ['gw-0'] } })).status, 400, 'a dynamic group takes no members');
    assert.equal((await s.api('PATCH', '/api/v1/groups/canary-set', { token: admin, body: { query: { online: true } } })).status, 400, 'a static group takes no query');
    assert.equal((await s.api('GET', '/api/v1/devices?seenBefore=100000000000000000000', { token: admin })).status, 400, 'a time past what the store holds is bad input, not a 500');
    const missing = await s.api('GET', '/api/v1/devices?group=nope', { token: admin });
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, 'BULWARK_ERR_NOT_FOUND');

    assert.deepEqual(
      (await s.api('GET', '/api/v1/groups', { token: admin })).body.map((g: { id: string }) => g.id),
      ['canary-set', 'site7-b'],
    );
    assert.equal((await s.api('DELETE', '/api/v1/groups/canary-set', { token: admin })).status, 204);
    assert.equal((await s.api('DELETE', '/api/v1/groups/canary-set', { token: admin })).status, 404);
    assert.equal((await s.api('GET', '/api/v1/devices/gw-1', { token: admin })).status, 200, 'its devices stay');
    const audit = await s.api('GET', '/api/v1/audit?action=group.members.add', { token: admin });
    assert.ok(
      audit.body.some((e: { target: string; result: string }) => e.target === 'canary-set' && e.result === 'ok'),
      'member changes are audited',
    );
  });
});
