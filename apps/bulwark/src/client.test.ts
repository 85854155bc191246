import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { type TestContext, describe, it } from 'node:test';
import { Session, normalizeUrl, openSession, send } from './client.js';
import { credentialsPath, forgetCredentials, readCredentials, savedProfiles, writeCredentials } from './credentials.js';
import type { CliError } from './errors.js';

const KEY = `bwk.key_test.${'k'.repeat(43)}`;

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A stand-in for the API: issues tok-1, tok-2, … and accepts only the newest token. */
async function fakeApi(t: TestContext, handle?: (req: IncomingMessage, res: ServerResponse) => boolean) {
  const state = { exchanges: 0, current: '', calls: [] as string[] };
  const server = createServer((req, res) => {
    state.calls.push(`${req.method} ${req.url} ${req.headers.authorization ?? ''}`.trim());
    if (handle?.(req, res)) return;
    res.setHeader('content-type', 'application/json');
    if (req.url === '/api/v1/auth/token') {
      state.exchanges += 1;
      state.current = `tok-${state.exchanges}`;
      res.end(JSON.stringify({ accessToken: state.current, tokenType: 'Bearer', expiresAt: Date.now() + 900_000, expiresIn: 900 }));
    } else if (req.headers.authorization === `Bearer ${state.current}`) {
      res.end(JSON.stringify({ ok: true }));
    } else {
      res.statusCode = 401;
      res.end(JSON.stringify({ error: { code: 'BULWARK_ERR_TOKEN_EXPIRED', message: 'the access token has expired', requestId: 'r1' } }));
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, state };
}

describe('credentials file', () => {
  it('lives at BULWARK_CLI_CONFIG, else under an absolute XDG_CONFIG_HOME, else ~/.config', () => {
    assert.equal(credentialsPath({ BULWARK_CLI_CONFIG: '/a/b.json', XDG_CONFIG_HOME: '/x' }), '/a/b.json');
    assert.equal(credentialsPath({ XDG_CONFIG_HOME: '/x' }), '/x/bulwark/credentials.json');
    assert.match(credentialsPath({ XDG_CONFIG_HOME: 'relative' }), /\.config\/bulwark\/credentials\.json$/);
  });

  it('is written 0600 in a 0700 directory and read back; a foreign file is refused', (t) => {
    const path = join(tempDir(t), 'new', 'credentials.json');
    writeCredentials(path, { url: 'http://127.0.0.1:1', key: KEY, token: { accessToken: 't', expiresAt: 5 } });
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(statSync(dirname(path)).mode & 0o777, 0o700);
    assert.deepEqual(readCredentials(path), { url: 'http://127.0.0.1:1', key: KEY, token: { accessToken: 't', expiresAt: 5 } });
    writeFileSync(path, '{"something": "else"}');
    assert.throws(
      () => readCredentials(path),
      (err: CliError) => err.code === 'BULWARK_CLI_CREDENTIALS',
    );
  });
});

describe('profiles', () => {
  it('keeps the default login at the top of the file, named ones beside it, and reads a file written before profiles', (t) => {
    const path = join(tempDir(t), 'credentials.json');
    writeFileSync(path, JSON.stringify({ url: 'http://127.0.0.1:1', key: KEY, token: { accessToken: 't', expiresAt: 5 } }), { mode: 0o600 });
    assert.deepEqual(readCredentials(path), { url: 'http://127.0.0.1:1', key: KEY, token: { accessToken: 't', expiresAt: 5 } });
    assert.equal(readCredentials(path, 'staging'), undefined);
    writeCredentials(path, { url: 'http://127.0.0.1:2', key: KEY }, 'staging');
    assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), { url: 'http://127.0.0.1:1', key: KEY, token: { accessToken: 't', expiresAt: 5 }, profiles: { staging: { url: 'http://127.0.0.1:2', key: KEY } } });
    writeCredentials(path, { url: 'http://127.0.0.1:3', key: KEY });
    assert.deepEqual(savedProfiles(path), ['default', 'staging'], 'a new default login keeps the other profiles');
    assert.equal(openSession({ BULWARK_CLI_CONFIG: path }).url, 'http://127.0.0.1:3');
    assert.equal(openSession({ BULWARK_CLI_CONFIG: path, BULWARK_PROFILE: 'staging' }).url, 'http://127.0.0.1:2');
    assert.throws(() => openSession({ BULWARK_CLI_CONFIG: path, BULWARK_PROFILE: 'prod' }), /no saved login for profile "prod"/);
    assert.throws(
      () => openSession({ BULWARK_CLI_CONFIG: path, BULWARK_PROFILE: '../x' }),
      (err: CliError) => err.exitCode === 2,
    );
    assert.equal(forgetCredentials(path), true);
    assert.deepEqual(savedProfiles(path), ['staging']);
    assert.throws(() => openSession({ BULWARK_CLI_CONFIG: path }), /not logged in/);
    assert.equal(forgetCredentials(path, 'staging'), true);
    assert.equal(existsSync(path), false, 'the file goes with its last login');
  });
});

describe('API client', () => {
  it('normalises URLs and refuses ones that are not http(s)', () => {
    assert.equal(normalizeUrl('http://127.0.0.1:8080/'), 'http://127.0.0.1:8080');
    assert.throws(
      () => normalizeUrl('ftp://x'),
      (err: CliError) => err.exitCode === 2,
    );
    assert.throws(
      () => normalizeUrl('http://u:p@x'),
      (err: CliError) => err.exitCode === 2,
    );
  });

  it('reuses a fresh cached token, and exchanges the key once when the server refuses it', async (t) => {
    const api = await fakeApi(t);
    const saved: string[] = [];
    await send(api.url, 'POST', '/api/v1/auth/token', { body: { key: KEY } }); // tok-1 is now current
    const session = new Session(api.url, KEY, { accessToken: 'tok-1', expiresAt: Date.now() + 600_000 }, (tok) => saved.push(tok.accessToken));
    assert.deepEqual(await session.call('GET', '/api/v1/users'), { ok: true });
    assert.equal(api.state.exchanges, 1, 'a fresh cached token is used as is');

    const stale = new Session(api.url, KEY, { accessToken: 'tok-old', expiresAt: Date.now() + 600_000 }, (tok) => saved.push(tok.accessToken));
    assert.deepEqual(await stale.call('GET', '/api/v1/users'), { ok: true });
    assert.equal(api.state.exchanges, 2, 'a refused cached token is replaced once');
    assert.deepEqual(saved, ['tok-2']);

    const expiring = new Session(api.url, KEY, { accessToken: 'tok-2', expiresAt: Date.now() + 1000 });
    await expiring.call('GET', '/api/v1/users');
    assert.equal(api.state.exchanges, 3, 'a token about to expire is replaced before use');
  });

  it('turns error bodies into their codes, and other answers into BULWARK_CLI_BAD_RESPONSE', async (t) => {
    const api = await fakeApi(t, (req, res) => {
      if (req.url !== '/html') return false;
      res.statusCode = 502;
      res.end('<html>bad gateway</html>');
      return true;
    });
    await assert.rejects(send(api.url, 'GET', '/api/v1/users', { token: 'nope' }), (err: CliError) => err.code === 'BULWARK_ERR_TOKEN_EXPIRED' && err.exitCode === 1);
    await assert.rejects(send(api.url, 'GET', '/html'), (err: CliError) => err.code === 'BULWARK_CLI_BAD_RESPONSE' && err.message.includes('HTTP 502'));
  });

  it('takes BULWARK_KEY over the saved login, and never sends a saved key to another BULWARK_URL', (t) => {
    const path = join(tempDir(t), 'credentials.json');
    writeCredentials(path, { url: 'http://127.0.0.1:1', key: KEY });
    assert.equal(openSession({ BULWARK_CLI_CONFIG: path }).url, 'http://127.0.0.1:1');
    assert.equal(openSession({ BULWARK_CLI_CONFIG: path, BULWARK_URL: 'http://127.0.0.1:2', BULWARK_KEY: KEY }).url, 'http://127.0.0.1:2');
    assert.throws(
      () => openSession({ BULWARK_CLI_CONFIG: path, BULWARK_URL: 'http://127.0.0.1:2' }),
      (err: CliError) => err.code === 'BULWARK_CLI_NOT_LOGGED_IN',
    );
    assert.throws(() => openSession({ BULWARK_CLI_CONFIG: join(dirname(path), 'none.json') }), /not logged in/);
  });
});
