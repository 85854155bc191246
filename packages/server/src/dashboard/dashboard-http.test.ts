import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import pino from 'pino';
import { createHttpApp } from '../http/app.js';
import { createMetrics } from '../observe/metrics.js';
import { tempDir } from '../testing/harness.js';
import { dashboardRoutes } from './routes.js';

async function appServing(dir: string) {
  const { app } = await createHttpApp({ logger: pino({ level: 'silent' }), bodyLimitBytes: 1024, trustedProxies: [], metrics: createMetrics(), version: 'test' });
  await app.register(dashboardRoutes, { dir });
  await app.ready();
  return app;
}

describe('dashboard at /', () => {
  it('serves index.html revalidated and hashed assets immutable, under a strict CSP', async (t) => {
    const dir = tempDir(t);
    mkdirSync(join(dir, 'assets'));
    writeFileSync(join(dir, 'index.html'), '<!doctype html><script type="module" src="/assets/index-abc123.js"></script>');
    writeFileSync(join(dir, 'assets', 'index-abc123.js'), 'console.log(1)');
    const app = await appServing(dir);
    t.after(() => app.close());

    const index = await app.inject({ url: '/' });
    assert.equal(index.statusCode, 200);
    assert.match(String(index.headers['content-type']), /^text\/html/);
    assert.equal(index.headers['cache-control'], 'no-cache');
    const csp = String(index.headers['content-security-policy']);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.match(csp, /style-src 'self'(;|$)/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(index.headers['x-content-type-options'], 'nosniff');
    assert.ok(index.headers['referrer-policy']);
    const again = await app.inject({ url: '/', headers: { 'if-none-match': String(index.headers.etag) } });
    assert.equal(again.statusCode, 304);

    const js = await app.inject({ url: '/assets/index-abc123.js' });
    assert.equal(js.statusCode, 200);
    assert.match(String(js.headers['content-type']), /^text\/javascript/);
    assert.equal(js.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.equal(js.body, 'console.log(1)');

    for (const url of ['/assets/nope.js', '/assets/..%2Findex.html', '/assets/.hidden']) {
      const res = await app.inject({ url });
      assert.equal(res.statusCode, 404, url);
      assert.equal(res.json().error.code, 'BULWARK_ERR_NOT_FOUND');
    }
  });

  it('says how to build it when it is not built, and picks up a build made later', async (t) => {
    const dir = tempDir(t);
    const app = await appServing(dir);
    t.after(() => app.close());
    const missing = await app.inject({ url: '/' });
    assert.equal(missing.statusCode, 503);
    assert.match(missing.body, /npm run build:dashboard/);
    assert.equal(missing.headers['cache-control'], 'no-store');
    assert.doesNotMatch(missing.body, /<script|style=/);

    writeFileSync(join(dir, 'index.html'), '<!doctype html><title>built</title>');
    const built = await app.inject({ url: '/' });
    assert.equal(built.statusCode, 200);
    assert.match(built.body, /built/);
  });
});
