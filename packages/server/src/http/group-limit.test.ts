import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SCOPES } from '../access/index.js';
import type { RouteInfo } from './app.js';
import { connectDevice, enrollDevice } from '../testing/devices.js';
import { type TestServer, startTestServer } from '../testing/harness.js';
import { eventually } from '../testing/eventually.js';
import { env, schema, sseReader } from '../testing/telemetry.js';

const isPublic = (r: RouteInfo) => 'public' in r.auth;
const WRITE = (r: RouteInfo) => r.method !== 'GET';

async function limitedAccount(s: TestServer, admin: string, deviceGroups: string[]): Promise<string> {
  // Every scope there is: what stops it is the group limit, not a missing scope.
  const bot = await s.api('POST', '/api/v1/users', { token: admin, body: { name: 'site-a-bot', kind: 'service', scopes: [...SCOPES], deviceGroups } });
  assert.equal(bot.status, 201, bot.text);
  assert.deepEqual(bot.body.deviceGroups, deviceGroups);
  const key = await s.api('POST', '/api/v1/keys', { token: admin, body: { name: 'k', principalId: bot.body.id } });
  return s.tokenFor(key.body.key);
}

describe('a principal limited to device groups', () => {
  it('gets 404 on every device route for a device outside its groups, and 403 on every route that reaches the whole fleet', async (t) => {
    const s = await startTestServer(t, { config: { rateLimit: { perPrincipalPerMinute: 100_000, perAddressPerMinute: 100_000 } } });
    const admin = await s.tokenFor(s.adminKey);
    for (const [id, model] of [
      ['a-1', 'gw-a'],
      ['b-1', 'gw-b'],
    ])
      assert.equal((await s.api('POST', '/api/v1/devices', { token: admin, body: { id, model } })).status, 201);
    assert.equal((await s.api('POST', '/api/v1/groups', { token: admin, body: { id: 'site-a', kind: 'static', members: ['a-1'] } })).status, 201);
    const token = await limitedAccount(s, admin, ['site-a']);

    const routes = s.server.routes.filter((r) => !isPublic(r) && !r.websocket);
    const deviceRoutes = routes.filter((r) => r.url.startsWith('/api/v1/devices/:id'));
    assert.deepEqual(
      deviceRoutes.filter((r) => r.groupLimit !== 'device').map((r) => `${r.method} ${r.url}`),
      [],
      'every route on one device says so',
    );
    assert.ok(deviceRoutes.length >= 20, `only ${deviceRoutes.length} device routes`);
    for (const r of deviceRoutes) {
      const path = r.url.replace(':id', 'b-1').replace(/:(\w+)/g, 'x1');
      const res = await s.api(r.method, path, { token, ...(WRITE(r) ? { body: {} } : {}) });
      assert.equal(res.status, 404, `${r.method} ${path}: ${res.text}`);
      assert.equal(res.body.error.code, 'BULWARK_ERR_NOT_FOUND');
      assert.equal(res.body.error.message, 'no device b-1', 'the same answer as for a device that does not exist');
    }
    const fleetWide = routes.filter((r) => r.groupLimit === undefined);
    assert.ok(fleetWide.length >= 40, `only ${fleetWide.length} fleet-wide routes`);
    for (const r of fleetWide) {
      const path = r.url.replace(/:(\w+)/g, 'x1');
      const res = await s.api(r.method, path, { token, ...(WRITE(r) ? { body: {} } : {}) });
      assert.equal(res.status, 403, `${r.method} ${path}: ${res.text}`);
      assert.equal(res.body.error.code, 'BULWARK_ERR_FORBIDDEN');
    }
    const b = (await s.api('GET', '/api/v1/devices/b-1', { token: admin })).body;
    assert.deepEqual([b.state, b.model], ['manufactured', 'gw-b'], "the other group's device is untouched");

    // Its own device answers as usual; so do the calls that say nothing about devices.
    assert.equal((await s.api('GET', '/api/v1/devices/a-1', { token })).status, 200);
    assert.equal((await s.api('PATCH', '/api/v1/devices/a-1', { token, body: { location: 'site-a' } })).status, 200);
    assert.equal((await s.api('GET', '/api/v1/auth/whoami', { token })).body.principal.deviceGroups[0], 'site-a');
    assert.equal((await s.api('GET', '/api/v1/schemas', { token })).status, 200);
  });

  it("sees only its groups' devices in lists, groups, jobs, live streams and exports; the limit can be changed and lifted", async (t) => {
    const s = await startTestServer(t, { config: { jobs: { tickIntervalMs: 20 } } });
    const admin = await s.tokenFor(s.adminKey);
    assert.equal((await s.api('POST', '/api/v1/schemas', { token: admin, body: schema })).status, 201);
    const a = await enrollDevice(s, admin, 'a-1', { model: 'gw-a' });
    const b = await enrollDevice(s, admin, 'b-1', { model: 'gw-b' });
    assert.equal((await s.api('POST', '/api/v1/devices', { token: admin, body: { id: 'a-2', model: 'gw-a' } })).status, 201);
    assert.equal((await s.api('POST', '/api/v1/groups', { token: admin, body: { id: 'site-a', kind: 'dynamic', query: { model: ['gw-a'] } } })).status, 201);
    assert.equal((await s.api('POST', '/api/v1/groups', { token: admin, body: { id: 'site-b', kind: 'static', members: ['b-1'] } })).status, 201);
    const refused = await s.api('POST', '/api/v1/users', { token: admin, body: { name: 'ghost-bot', kind: 'service', scopes: ['devices:read'], deviceGroups: ['nowhere'] } });
    assert.equal(refused.status, 404, 'an unknown group is refused');
    const token = await limitedAccount(s, admin, ['site-a']);

    const ids = async (path: string) => ((await s.api('GET', path, { token })).body as { id: string }[]).map((d) => d.id);
    assert.deepEqual(await ids('/api/v1/devices'), ['a-1', 'a-2']);
    assert.deepEqual(await ids('/api/v1/devices?group=site-b'), []);
    assert.deepEqual(await ids('/api/v1/groups'), ['site-a']);
    const stats = (await s.api('GET', '/api/v1/devices/stats', { token })).body;
    assert.deepEqual([stats.total, stats.byModel], [2, [{ value: 'gw-a', count: 2 }]], 'the fleet counts of its groups only');
    assert.equal((await s.api('GET', '/api/v1/devices/stats', { token: admin })).body.total, 3);
    assert.equal((await s.api('GET', '/api/v1/groups/site-b', { token })).status, 404);

    // Jobs: over its groups only, and it sees no other.
    const theirs = await s.api('POST', '/api/v1/jobs', { token: admin, body: { name: 'b', group: 'site-b', operation: { type: 'twin-patch', patch: { intervalS: 9 } } } });
    assert.equal(theirs.status, 201, theirs.text);
    assert.equal((await s.api('POST', '/api/v1/jobs', { token, body: { name: 'x', group: 'site-b', operation: { type: 'suspend' } } })).status, 404);
    const mine = await s.api('POST', '/api/v1/jobs', { token, body: { name: 'a', group: 'site-a', operation: { type: 'twin-patch', patch: { intervalS: 5 } } } });
    assert.equal(mine.status, 201, mine.text);
    assert.deepEqual(await ids('/api/v1/jobs'), [mine.body.id]);
    for (const path of [`/api/v1/jobs/${theirs.body.id}`, `/api/v1/jobs/${theirs.body.id}/devices`]) assert.equal((await s.api('GET', path, { token })).status, 404, path);
    assert.equal((await s.api('POST', `/api/v1/jobs/${theirs.body.id}/cancel`, { token, body: {} })).status, 404);

    // A live stream of the whole fleet carries only its devices' readings.
    const ticket = (await s.api('POST', '/api/v1/auth/stream-ticket', { token, body: {} })).body.ticket as string;
    const stop = new AbortController();
    const live = await fetch(`${s.url}/api/v1/telemetry/live?ticket=${ticket}`, { signal: stop.signal });
    assert.equal(live.status, 200);
    const next = sseReader(live);
    assert.equal((await next()).event, 'ready');
    const [ca, cb] = await Promise.all([connectDevice(s, a), connectDevice(s, b)]);
    t.after(() => {
      ca.end(true);
      cb.end(true);
    });
    await cb.publishAsync('devices/b-1/telemetry', env('b-1', { temp_c: 30 }), { qos: 1 });
    await ca.publishAsync('devices/a-1/telemetry', env('a-1', { temp_c: 20 }), { qos: 1 });
    const got = await next();
    assert.deepEqual([got.event, got.data.deviceId], ['reading', 'a-1'], "b-1's reading, stored first, never reached it");
    stop.abort();

    // Exports: a schema export holds its devices' readings only; another group's device is not found.
    const range = `since=0&until=${Date.now() + 60_000}`;
    const exported = await s.api('GET', `/api/v1/telemetry/export?schema=env-sensor@1&${range}`, { token });
    assert.equal(exported.status, 200, exported.text);
    const rows = exported.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { deviceId: string });
    assert.deepEqual(
      rows.map((r) => r.deviceId),
      ['a-1'],
    );
    assert.equal((await s.api('GET', `/api/v1/telemetry/export?schema=env-sensor@1&${range}`, { token: admin })).text.trim().split('\n').length, 2, 'the admin sees both');
    assert.equal((await s.api('GET', `/api/v1/telemetry/export?device=b-1&${range}`, { token })).status, 404);

    // Changed at once for tokens already issued, and lifted with null.
    const me = (await s.api('GET', '/api/v1/auth/whoami', { token })).body.principal.id as string;
    assert.equal((await s.api('PUT', `/api/v1/users/${me}/device-groups`, { token: admin, body: { deviceGroups: ['site-b'] } })).status, 200);
    assert.deepEqual(await ids('/api/v1/devices'), ['b-1']);
    assert.equal((await s.api('PUT', `/api/v1/users/${me}/device-groups`, { token, body: { deviceGroups: null } })).status, 403, 'it cannot lift its own limit');
    assert.equal((await s.api('PUT', `/api/v1/users/${me}/device-groups`, { token: admin, body: { deviceGroups: null } })).status, 200);
    assert.deepEqual(await ids('/api/v1/devices'), ['a-1', 'a-2', 'b-1']);
  });

  it("sees only its groups' alerts and dead letters; another group's are not found; a rule scoped to a group fires for its members only", async (t) => {
    const s = await startTestServer(t, { config: { rateLimit: { perPrincipalPerMinute: 100_000, perAddressPerMinute: 100_000 } } });
    const admin = await s.tokenFor(s.adminKey);
    assert.equal((await s.api('POST', '/api/v1/schemas', { token: admin, body: schema })).status, 201);
    const a = await enrollDevice(s, admin, 'a-1', { model: 'gw-a' });
    const b = await enrollDevice(s, admin, 'b-1', { model: 'gw-b' });
    assert.equal((await s.api('POST', '/api/v1/groups', { token: admin, body: { id: 'site-a', kind: 'dynamic', query: { model: ['gw-a'] } } })).status, 201);
    const token = await limitedAccount(s, admin, ['site-a']);

    // A rule naming an unknown group is refused with the path; one on site-a fires for a-1 only, one on the whole fleet for both.
    const hot = (name: string, scope: Record<string, unknown>) => ({ name, scope: { schemas: ['env-sensor@1'], ...scope }, condition: { kind: 'threshold', field: 'temp_c', op: '>', value: 80 } });
    const unknown = await s.api('POST', '/api/v1/alerts/rules', { token: admin, body: hot('x', { groups: ['site-a', 'nowhere'] }) });
    assert.equal(unknown.status, 400, unknown.text);
    assert.deepEqual(unknown.body.error.details.problems, [{ path: 'scope.groups[1]', reason: 'no group nowhere' }]);
    const siteRule = await s.api('POST', '/api/v1/alerts/rules', { token: admin, body: hot('site-a hot', { groups: ['site-a'] }) });
    assert.equal(siteRule.status, 201, siteRule.text);
    assert.deepEqual(siteRule.body.scope.groups, ['site-a']);
    const fleetRule = await s.api('POST', '/api/v1/alerts/rules', { token: admin, body: hot('fleet hot', {}) });
    assert.equal(fleetRule.status, 201, fleetRule.text);

    const [ca, cb] = await Promise.all([connectDevice(s, a), connectDevice(s, b)]);
    t.after(() => {
      ca.end(true);
      cb.end(true);
    });
    await ca.publishAsync('devices/a-1/telemetry', env('a-hot', { temp_c: 90 }), { qos: 1 });
    await cb.publishAsync('devices/b-1/telemetry', env('b-hot', { temp_c: 90 }), { qos: 1 });
    // Refused by the pipeline: one dead letter each.
    await ca.publishAsync('devices/a-1/telemetry', '{"not": "an envelope"}', { qos: 1 });
    await cb.publishAsync('devices/b-1/telemetry', '{"not": "an envelope"}', { qos: 1 });

    type AlertRow = { id: string; ruleId: string; deviceId: string };
    const all = await eventually(
      async () => (await s.api('GET', '/api/v1/alerts?state=open', { token: admin })).body as AlertRow[],
      (l) => l.length === 3,
    );
    assert.deepEqual(all.map((x) => `${x.ruleId === siteRule.body.id ? 'site' : 'fleet'} ${x.deviceId}`).sort(), ['fleet a-1', 'fleet b-1', 'site a-1']);
    const mine = (await s.api('GET', '/api/v1/alerts?state=open', { token })).body as AlertRow[];
    assert.deepEqual(
      mine.map((x) => x.deviceId),
      ['a-1', 'a-1'],
    );
    assert.deepEqual((await s.api('GET', '/api/v1/alerts?deviceId=b-1', { token })).body, []);
    const theirs = all.find((x) => x.deviceId === 'b-1') as AlertRow;
    for (const [method, path] of [
      ['GET', `/api/v1/alerts/${theirs.id}`],
      ['POST', `/api/v1/alerts/${theirs.id}/acknowledge`],
      ['POST', `/api/v1/alerts/${theirs.id}/resolve`],
    ] as const) {
      const res = await s.api(method, path, { token, ...(method === 'POST' ? { body: {} } : {}) });
      assert.equal(res.status, 404, `${method} ${path}: ${res.text}`);
      assert.equal(res.body.error.message, `no alert ${theirs.id}`, 'the same answer as for an alert that does not exist');
    }
    const own = mine[0] as AlertRow;
    assert.equal((await s.api('POST', `/api/v1/alerts/${own.id}/acknowledge`, { token, body: {} })).status, 200);
    assert.equal((await s.api('GET', `/api/v1/alerts/${theirs.id}`, { token: admin })).body.state, 'firing', "the other group's alert is untouched");

    type Letter = { id: string; deviceId: string };
    const letters = await eventually(
      async () => (await s.api('GET', '/api/v1/dead-letters', { token: admin })).body as Letter[],
      (l) => l.length === 2,
    );
    assert.deepEqual(
      ((await s.api('GET', '/api/v1/dead-letters', { token })).body as Letter[]).map((l) => l.deviceId),
      ['a-1'],
    );
    const other = letters.find((l) => l.deviceId === 'b-1') as Letter;
    for (const [method, path] of [
      ['GET', `/api/v1/dead-letters/${other.id}`],
      ['POST', `/api/v1/dead-letters/${other.id}/replay`],
    ] as const) {
      const res = await s.api(method, path, { token, ...(method === 'POST' ? { body: {} } : {}) });
      assert.equal(res.status, 404, `${method} ${path}: ${res.text}`);
      assert.equal(res.body.error.message, `no dead letter ${other.id}`);
    }
    const ownLetter = letters.find((l) => l.deviceId === 'a-1') as Letter;
    assert.equal((await s.api('GET', `/api/v1/dead-letters/${ownLetter.id}`, { token })).status, 200);
    // Rules, silences, incidents and rollouts reach the whole fleet: refused.
    for (const path of ['/api/v1/alerts/rules', '/api/v1/alerts/incidents', '/api/v1/alerts/silences', '/api/v1/rollouts', '/api/v1/audit']) {
      assert.equal((await s.api('GET', path, { token })).status, 403, path);
    }
  });
});
