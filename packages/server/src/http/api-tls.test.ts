import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { startTestServer, tempDir } from '../testing/harness.js';

const run = promisify(execFile);
const portOf = (url: string) => new URL(url).port;

/** curl, the third-party client: status line and headers of GET `path`, or the failure it printed. */
async function curl(args: readonly string[]): Promise<{ ok: true; head: string } | { ok: false; error: string }> {
  try {
    const { stdout } = await run('curl', ['--silent', '--show-error', '--max-time', '10', '--head', ...args]);
    return { ok: true, head: stdout.toLowerCase() };
  } catch (err) {
    return { ok: false, error: String((err as { stderr?: string }).stderr ?? err) };
  }
}

/** openssl s_client's handshake with the API, verifying the chain against `caFile` for `name`. */
async function sClient(port: string, caFile: string, name: string): Promise<string> {
  const { stdout } = await run('sh', ['-c', `openssl s_client -connect 127.0.0.1:${port} -servername ${name} -verify_hostname ${name} -CAfile '${caFile}' -verify_return_error < /dev/null 2>&1`]);
  return stdout;
}

describe('the HTTP API over TLS (http.tls)', () => {
  it('serves HTTPS only, with a certificate from the platform CA that openssl and curl verify, and HSTS', async (t) => {
    const s = await startTestServer(t, { config: { http: { tls: true, tlsNames: 'api.bulwark.test' } } });
    assert.match(s.url, /^https:\/\//);
    const caFile = join(s.dataDir, 'ca.pem');
    assert.equal(s.server.apiCaFile, caFile);
    assert.match(readFileSync(caFile, 'utf8'), /BEGIN CERTIFICATE/);
    const port = portOf(s.url);

    const handshake = await sClient(port, caFile, 'localhost');
    assert.match(handshake, /Verify return code: 0 \(ok\)/);
    assert.match(handshake, /Verified peername: localhost/);
    assert.match(handshake, /New, TLSv1\.[23]/);

    const ok = await curl(['--cacert', caFile, `https://localhost:${port}/healthz`]);
    assert.ok(ok.ok, ok.ok ? '' : ok.error);
    assert.match(ok.head, /^http\/1\.1 200/);
    assert.match(ok.head, /strict-transport-security: max-age=15552000/);
    // A name from http.tlsNames is in the certificate too.
    const named = await curl(['--cacert', caFile, '--resolve', `api.bulwark.test:${port}:127.0.0.1`, `https://api.bulwark.test:${port}/healthz`]);
    assert.ok(named.ok, named.ok ? '' : named.error);

    // A name the certificate does not carry, a client that does not trust the CA, and plain HTTP all fail.
    const wrongName = await curl(['--cacert', caFile, '--resolve', `elsewhere.test:${port}:127.0.0.1`, `https://elsewhere.test:${port}/healthz`]);
    assert.equal(wrongName.ok, false);
    assert.equal((await curl([`https://localhost:${port}/healthz`])).ok, false, 'not trusted without the platform CA');
    const plain = await curl([`http://127.0.0.1:${port}/healthz`]);
    assert.ok(!plain.ok || !/^http\/1\.1 200/.test(plain.head), 'no plain HTTP on the TLS port');
  });

  it("serves the operator's own certificate and key, and writes no CA file", async (t) => {
    const dir = tempDir(t);
    const [cert, key] = [join(dir, 'api.crt'), join(dir, 'api.key')];
    await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', key, '-out', cert]);
    const s = await startTestServer(t, { config: { http: { tls: true, tlsCertFile: cert, tlsKeyFile: key, hstsMaxAgeS: 0 } } });
    assert.equal(s.server.apiCaFile, undefined);
    assert.equal(existsSync(join(s.dataDir, 'ca.pem')), false);
    const res = await curl(['--cacert', cert, `https://localhost:${portOf(s.url)}/healthz`]);
    assert.ok(res.ok, res.ok ? '' : res.error);
    assert.match(res.head, /^http\/1\.1 200/);
    assert.doesNotMatch(res.head, /strict-transport-security/, 'hstsMaxAgeS 0 sends none');
  });

  it('refuses to start with a certificate file it cannot read', async (t) => {
    const dir = tempDir(t);
    await assert.rejects(startTestServer(t, { config: { http: { tls: true, tlsCertFile: join(dir, 'missing.crt'), tlsKeyFile: join(dir, 'missing.key') } } }), /http\.tlsKeyFile: cannot read|http\.tlsCertFile: cannot read/);
  });
});
