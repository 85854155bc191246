import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import pino from 'pino';
import { buildServer } from './server.js';
import { loadConfig } from './config/index.js';
import { createHttpApp } from './http/app.js';
import { createMetrics } from './observe/metrics.js';
import { newAdminKey, startTestServer, tempDir } from './testing/harness.js';

describe('the server', () => {
  it('keeps all state across a restart', async (t) => {
    const dataDir = tempDir(t);
    const adminKey = newAdminKey();
    const first = await startTestServer(t, { dataDir, adminKey, keepRunning: true });
    const admin = await first.tokenFor(adminKey);
    const user = await first.api('POST', '/api/v1/users', { token: admin, body: { name: 'ops', role: 'operator' } });
    const key = await first.api('POST', '/api/v1/keys', { token: admin, body: { name: 'ops-key', principalId: user.body.id } });
    const revoked = await first.api('POST', '/api/v1/keys', { token: admin, body: { name: 'gone', principalId: user.body.id } });
    await first.api('POST', `/api/v1/keys/${revoked.body.apiKey.id}/revoke`, { token: admin });
    const auditBefore = (await first.api('GET', '/api/v1/audit?limit=1000', { token: admin })).body;
    await first.server.stop();

    const second = await startTestServer(t, { dataDir, adminKey: newAdminKey() });
    assert.equal(second.server.firstStart.adminKey, undefined);
    const again = await second.tokenFor(adminKey);
    assert.equal((await second.api('GET', `/api/v1/users/${user.body.id}`, { token: again })).body.name, 'ops');
    const opsToken = await second.tokenFor(key.body.key);
    assert.equal((await second.api('GET', '/api/v1/auth/whoami', { token: opsToken })).body.principal.role, 'operator');
    assert.equal((await second.api('POST', '/api/v1/auth/token', { body: { key: revoked.body.key } })).status, 401, 'a revoked key stays revoked');
    assert.equal((await second.api('GET', '/api/v1/auth/whoami', { token: admin })).status, 200, 'a token from before the restart still works');
    const auditAfter = (await second.api('GET', '/api/v1/audit?limit=1000', { token: again })).body as { seq: number }[];
    const afterSeqs = new Set(auditAfter.map((e) => e.seq));
    assert.ok(auditBefore.every((e: { seq: number }) => afterSeqs.has(e.seq)));
    assert.equal((await second.api('POST', '/api/v1/audit/verify', { token: again })).body.ok, true);
  });

  it('puts the request id on every log line of a request', async (t) => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
        done();
      },
    });
    const config = loadConfig({ file: { dataDir: tempDir(t), http: { port: 0 }, mqtt: { port: 0, host: '127.0.0.1' }, deviceHttp: { port: 0, host: '127.0.0.1' }, log: { level: 'info' } }, env: { BULWARK_BOOTSTRAP_ADMIN_KEY: newAdminKey() } });
    const server = await buildServer(config, { logger: pino({ level: 'info' }, sink) });
    t.after(() => server.stop());
    const url = await server.start();
    await fetch(`${url}/api/v1/users`, { headers: { 'x-request-id': 'trace-me-1' } });
    const mine = lines.filter((l) => JSON.stringify(l).includes('trace-me-1'));
    assert.ok(mine.length >= 2, 'the incoming and completed lines at least');
    for (const l of mine) assert.equal(l.reqId, 'trace-me-1');
    assert.ok(!lines.some((l) => JSON.stringify(l).includes(config.bootstrapAdminKey ?? 'never')), 'the admin key is never logged');
  });

  it('refuses a route registered without an auth rule', async () => {
    const { app } = await createHttpApp({ logger: pino({ level: 'silent' }), bodyLimitBytes: 1024, trustedProxies: [], metrics: createMetrics(), version: 'test' });
    try {
      assert.throws(() => app.get('/api/v1/oops', async () => 'open'), /declares no auth setting/);
      app.get('/api/v1/fine', { config: { auth: { public: true } } }, async () => 'fine');
    } finally {
      await app.close();
    }
  });
});
