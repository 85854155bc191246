import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { loadConfig } from '../config/index.js';
import { buildServer } from '../server.js';
import { newAdminKey, tempDir } from '../testing/harness.js';
import { REDACTED, redactUrl } from './log-redaction.js';

describe('request logs', () => {
  it('redact the values of credential-like query parameters, keeping the path and the rest', () => {
    assert.equal(redactUrl('/api/v1/telemetry/live?schema=x&ticket=bst.abc'), `/api/v1/telemetry/live?schema=x&ticket=${REDACTED}`);
    assert.equal(
      redactUrl('/a?access_token=t&apiKey=k&client_secret=s&password=p&claimToken=c&tick%65t=e&limit=5&keyless'),
      `/a?access_token=${REDACTED}&apiKey=${REDACTED}&client_secret=${REDACTED}&password=${REDACTED}&claimToken=${REDACTED}&tick%65t=${REDACTED}&limit=5&keyless`,
    );
    assert.equal(redactUrl('/api/v1/devices'), '/api/v1/devices');
    assert.equal(redactUrl('/a?%zz=1&Ticket=%E0'), `/a?%zz=1&Ticket=${REDACTED}`, 'undecodable names and values do not throw');
  });

  it('never contain a stream ticket, while the path they opened is there', { timeout: 60_000 }, async (t) => {
    const lines: string[] = [];
    const waiters: { match: (line: string) => boolean; resolve: () => void }[] = [];
    const logger = pino(
      { level: 'info' },
      {
        write(line: string) {
          lines.push(line);
          for (const w of waiters.filter((x) => x.match(line))) w.resolve();
        },
      },
    );
    const logged = (match: (line: string) => boolean) => (lines.some(match) ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ match, resolve })));

    const dataDir = tempDir(t);
    const adminKey = newAdminKey();
    const config = loadConfig({
      file: { dataDir, http: { port: 0 }, mqtt: { port: 0, host: '127.0.0.1' }, deviceHttp: { port: 0, host: '127.0.0.1' }, coap: { port: 0 }, log: { level: 'info' } },
      fileName: 'test overrides',
      env: { BULWARK_BOOTSTRAP_ADMIN_KEY: adminKey },
    });
    const server = await buildServer(config, { logger });
    const url = await server.start();
    t.after(() => server.stop());

    const post = async (path: string, body: unknown, token?: string) =>
      (
        await fetch(url + path, {
          method: 'POST',
          body: JSON.stringify(body),
          headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        })
      ).json() as Promise<Record<string, string>>;
    const token = (await post('/api/v1/auth/token', { key: adminKey })).accessToken ?? '';
    const ticket = async () => (await post('/api/v1/auth/stream-ticket', {}, token)).ticket ?? '';
    const first = await ticket();
    assert.match(first, /^bst\./);

    const ac = new AbortController();
    t.after(() => ac.abort());
    const stream = await fetch(`${url}/api/v1/telemetry/live?schema=x&ticket=${first}`, { signal: ac.signal });
    assert.equal(stream.status, 200);
    ac.abort();
    // Also where the request never reaches a route: an unknown path, a bad percent-encoding, a spent ticket.
    const second = await ticket();
    assert.equal((await fetch(`${url}/api/v1/nowhere?ticket=${second}&access_token=${token}`)).status, 404);
    assert.equal((await fetch(`${url}/api/v1/devices/%zz?ticket=${second}`)).status, 400);
    assert.equal((await fetch(`${url}/api/v1/telemetry/live?ticket=${first}`)).status, 401);

    // Each request is logged as it comes in; the last one's completion comes after all of those.
    await logged((l) => l.includes('request completed') && l.includes('"statusCode":401'));
    assert.ok(lines.some((l) => l.includes('/api/v1/telemetry/live?schema=x&ticket=[redacted]')));
    assert.ok(lines.some((l) => l.includes('/api/v1/devices/%zz?ticket=[redacted]')));
    const text = lines.join('');
    for (const secret of [first, second, first.slice(4), second.slice(4), token]) assert.ok(!text.includes(secret), `${secret.slice(0, 8)}… is in the log`);
    assert.ok(text.includes(`/api/v1/nowhere?ticket=${REDACTED}&access_token=${REDACTED}`));
  });
});
