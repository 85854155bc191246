import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ERROR_CODES } from '@bulwark/core';
import type { RouteInfo } from './app.js';
import { SCOPES } from '../access/index.js';
import { type TestServer, startTestServer } from '../testing/harness.js';

/** A concrete path for a route pattern: every `:param` becomes a harmless id. */
const pathOf = (r: RouteInfo) => r.url.replace(/:(\w+)/g, 'x1');
const WRITE = (r: RouteInfo) => r.method !== 'GET';
/** A change: any non-GET route except the POSTs that only read (verify, validate, a stream ticket for a read stream). */
const CHANGES = (r: RouteInfo) => WRITE(r) && !('scope' in r.auth && r.auth.scope.endsWith(':read')) && r.url !== '/api/v1/auth/stream-ticket';
const isPublic = (r: RouteInfo) => 'public' in r.auth;
const documented = (code: unknown) => typeof code === 'string' && code in ERROR_CODES;

function assertClientError(res: { status: number; body: { error?: { code?: string } }; text: string }, what: string, status?: number): void {
  if (status !== undefined) assert.equal(res.status, status, `${what}: ${res.text}`);
  assert.ok(res.status >= 400 && res.status < 500, `${what}: expected 4xx, got ${res.status} ${res.text}`);
  assert.ok(documented(res.body?.error?.code), `${what}: undocumented or missing code in ${res.text}`);
}

async function viewerToken(s: TestServer, admin: string): Promise<string> {
  const user = await s.api('POST', '/api/v1/users', { token: admin, body: { name: 'viewer1', role: 'viewer' } });
  assert.equal(user.status, 201, user.text);
  const key = await s.api('POST', '/api/v1/keys', { token: admin, body: { name: 'v', principalId: user.body.id } });
  assert.equal(key.status, 201, key.text);
  return s.tokenFor(key.body.key);
}

describe('the route table', () => {
  it('refuses every non-public route without credentials, and with a forged token', async (t) => {
    const s = await startTestServer(t, { config: { auth: { lockoutThreshold: 10_000 } } });
    const guarded = s.server.routes.filter((r) => !isPublic(r) && !('loopbackOrScope' in r.auth));
    assert.ok(guarded.length >= 14, `only ${guarded.length} guarded routes found`);
    for (const r of guarded) {
      const none = await s.api(r.method, pathOf(r), WRITE(r) ? { body: {} } : {});
      assertClientError(none, `${r.method} ${r.url} without credentials`, 401);
      assert.equal(none.body.error.code, 'BULWARK_ERR_UNAUTHENTICATED');
      const forged = await s.api(r.method, pathOf(r), { token: 'bwt.eyJ2IjoxfQ.AAAA', ...(WRITE(r) ? { body: {} } : {}) });
      assertClientError(forged, `${r.method} ${r.url} with a forged token`, 401);
      assert.equal(forged.body.error.code, 'BULWARK_ERR_TOKEN_INVALID');
    }
  });

  it('answers metrics without credentials on loopback only', async (t) => {
    const s = await startTestServer(t, { config: { http: { port: 0, trustedProxies: '127.0.0.1' } } });
    const local = await s.api('GET', '/metrics');
    assert.equal(local.status, 200);
    assert.match(local.text, /bulwark_http_requests_total/);
    const remote = await s.api('GET', '/metrics', { headers: { 'x-forwarded-for': '203.0.113.9' } });
    assertClientError(remote, 'metrics from a remote address', 403);
    assert.equal(remote.body.error.code, 'BULWARK_ERR_NOT_LOOPBACK');
    // A client that writes its own X-Forwarded-For in front of the proxy's hop gains nothing.
    const spoofed = await s.api('GET', '/metrics', { headers: { 'x-forwarded-for': '127.0.0.1, 203.0.113.5' } });
    assert.equal(spoofed.status, 403);
  });

  it('lets a viewer read but refuses it every write route with 403', async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    const viewer = await viewerToken(s, admin);
    const writes = s.server.routes.filter((r) => CHANGES(r) && !isPublic(r));
    assert.ok(writes.length >= 7, `only ${writes.length} write routes`);
    for (const r of writes) {
      const res = await s.api(r.method, pathOf(r), { token: viewer, body: {} });
      assertClientError(res, `viewer ${r.method} ${r.url}`, 403);
      assert.equal(res.body.error.code, 'BULWARK_ERR_FORBIDDEN');
    }
    const users = await s.api('GET', '/api/v1/users', { token: viewer });
    assert.equal(users.status, 403, 'a viewer does not hold users:read');
    const me = await s.api('GET', '/api/v1/auth/whoami', { token: viewer });
    assert.equal(me.status, 200);
    assert.equal(me.body.principal.role, 'viewer');
  });

  it('refuses every principal-management route to a caller acting on a principal that outranks it', async (t) => {
    const s = await startTestServer(t, { config: { rateLimit: { perPrincipalPerMinute: 100_000 } } });
    const admin = await s.tokenFor(s.adminKey);
    const root = (await s.api('GET', '/api/v1/auth/whoami', { token: admin })).body.principal;
    const rootKey = (await s.api('GET', '/api/v1/keys', { token: admin })).body[0];
    // Every scope there is, but not `*`: still less than the admin.
    const almost = await s.api('POST', '/api/v1/users', { token: admin, body: { name: 'almost-admin', kind: 'service', scopes: [...SCOPES] } });
    const key = await s.api('POST', '/api/v1/keys', { token: admin, body: { name: 'k', principalId: almost.body.id } });
    const caller = await s.tokenFor(key.body.key);

    const managing = s.server.routes.filter((r) => r.actsOn !== undefined);
    // A route that changes a principal or its keys must say so, or the walk would miss it.
    const undeclared = s.server.routes.filter((r) => WRITE(r) && (/^\/api\/v1\/users\/:id\//.test(r.url) || r.url.startsWith('/api/v1/keys')) && r.actsOn === undefined);
    assert.deepEqual(
      undeclared.map((r) => `${r.method} ${r.url}`),
      [],
      'principal-management routes without actsOn',
    );
    assert.ok(managing.length >= 4, `only ${managing.length} principal-management routes`);
    for (const r of managing) {
      const path = r.url.replace(':id', r.actsOn === 'key' ? rootKey.id : root.id);
      const bodies: Record<string, unknown> = { '/api/v1/keys': { name: 'x', principalId: root.id, scopes: ['devices:read'] }, '/api/v1/users/:id/device-groups': { deviceGroups: null } };
      const body = bodies[r.url] ?? {};
      const res = await s.api(r.method, path, { token: caller, body });
      assertClientError(res, `${r.method} ${r.url} against the admin`, 403);
      assert.equal(res.body.error.code, 'BULWARK_ERR_FORBIDDEN');
    }
    assert.equal((await s.api('GET', '/api/v1/auth/whoami', { token: admin })).status, 200, 'the admin is untouched');
    assert.equal((await s.api('GET', '/api/v1/keys', { token: admin })).body.length, 1, 'no key was made for the admin');
  });

  it('answers bad input on every route with a 4xx and a documented code, never a 5xx', async (t) => {
    const s = await startTestServer(t, { config: { http: { port: 0, bodyLimitBytes: 4096 }, rateLimit: { perPrincipalPerMinute: 100_000, perAddressPerMinute: 100_000 } } });
    const admin = await s.tokenFor(s.adminKey);
    let checks = 0;
    for (const r of s.server.routes) {
      const path = pathOf(r);
      const token = isPublic(r) ? undefined : admin;
      const call = (o: { body?: unknown; rawBody?: string; query?: string; path?: string }) =>
        s.api(r.method, (o.path ?? path) + (o.query ?? ''), { ...(token ? { token } : {}), ...(o.body !== undefined ? { body: o.body } : {}), ...(o.rawBody !== undefined ? { rawBody: o.rawBody } : {}) });
      const what = `${r.method} ${r.url}`;
      if (WRITE(r)) {
        const malformed = await call({ rawBody: '{"name": "x",' });
        assertClientError(malformed, `${what} malformed JSON`, 400);
        assert.equal(malformed.body.error.code, 'BULWARK_ERR_MALFORMED_JSON');
        assertClientError(await call({ rawBody: JSON.stringify({ pad: 'x'.repeat(5000) }) }), `${what} huge body`, 413);
        checks += 2;
      }
      if (r.schema.body) {
        const wrongType = await call({ body: [1, 2, 3] });
        assertClientError(wrongType, `${what} array body`, 400);
        assert.equal(wrongType.body.error.code, 'BULWARK_ERR_VALIDATION');
        const wrongFieldTypes = await call({ body: { name: 42, key: 42, role: 7, scopes: 'x', kind: 1 } });
        assertClientError(wrongFieldTypes, `${what} wrong field types`, 400);
        const unknown = await call({ body: { surprise: true } });
        assertClientError(unknown, `${what} unknown field`, 400);
        checks += 3;
      }
      if (r.schema.querystring) {
        assertClientError(await call({ query: '?surprise=1' }), `${what} unknown query parameter`, 400);
        assertClientError(await call({ query: '?limit=abc&since=yesterday&all=maybe' }), `${what} wrong query types`, 400);
        checks += 2;
      }
      if (r.schema.params) {
        assertClientError(await call({ path: r.url.replace(/:(\w+)/g, 'bad%20id%2F..'), ...(WRITE(r) ? { body: {} } : {}) }), `${what} bad path parameter`, 400);
        checks += 1;
      }
    }
    assert.ok(checks >= 30, `only ${checks} bad-input checks ran`);
    const unsupported = await s.api('POST', '/api/v1/users', { token: admin, rawBody: 'name=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assertClientError(unsupported, 'form body', 415);
  });

  it('serves the OpenAPI document and the browsable docs', async (t) => {
    const s = await startTestServer(t);
    const doc = await s.api('GET', '/api/v1/openapi.json');
    assert.equal(doc.status, 200);
    assert.equal(doc.body.openapi, '3.1.0');
    for (const r of s.server.routes.filter((x) => x.url.startsWith('/api/v1/') && !x.url.startsWith('/api/v1/docs') && x.url !== '/api/v1/openapi.json' && !x.websocket)) {
      const openapiPath = r.url.replace(/:(\w+)/g, '{$1}');
      assert.ok(doc.body.paths[openapiPath]?.[r.method.toLowerCase()], `${r.method} ${r.url} is missing from the OpenAPI document`);
    }
    const page = await fetch(`${s.url}/api/v1/docs/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /swagger/i);
  });
});
