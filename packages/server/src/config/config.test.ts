import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SETTINGS, envName, loadConfig } from './index.js';

const problemsOf = (fn: () => unknown): string[] => {
  try {
    fn();
  } catch (err) {
    return (err as { details?: { problems?: string[] } }).details?.problems ?? [];
  }
  assert.fail('expected the configuration to be refused');
};

describe('configuration', () => {
  it('has safe defaults: loopback HTTP on 8080, SQLite in ./.bulwark, 15-minute tokens', () => {
    const c = loadConfig({});
    assert.equal(c.http.host, '127.0.0.1');
    assert.equal(c.http.port, 8080);
    assert.equal(c.dataDir, './.bulwark');
    assert.equal(c.store, 'sqlite');
    assert.equal(c.auth.accessTokenTtlMs, 900_000);
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.http));
  });

  it('takes flags over environment over file', () => {
    const c = loadConfig({
      flags: { 'http.port': '9001' },
      env: { BULWARK_HTTP_PORT: '9002', BULWARK_LOG_LEVEL: 'warn' },
      file: { http: { port: 9003, host: '0.0.0.0', allowInsecure: true }, log: { level: 'debug' }, rateLimit: { perPrincipalPerMinute: 7 } },
    });
    assert.equal(c.http.port, 9001);
    assert.equal(c.log.level, 'warn');
    assert.equal(c.http.host, '0.0.0.0');
    assert.equal(c.rateLimit.perPrincipalPerMinute, 7);
  });

  it('reports every invalid setting at once', () => {
    const problems = problemsOf(() =>
      loadConfig({
        env: { BULWARK_HTTP_PORT: 'eighty', BULWARK_TYPO: '1', BULWARK_AUTH_LOCKOUT_THRESHOLD: '0' },
        file: { http: { allowInsecure: 'perhaps' }, log: { level: 'loud' }, colour: 'blue', masterKey: 'x' },
        fileName: 'bulwark.json',
      }),
    );
    const text = problems.join('\n');
    for (const needle of ['BULWARK_HTTP_PORT', 'BULWARK_TYPO', 'auth.lockoutThreshold', 'http.allowInsecure', 'log.level', 'unknown setting "colour"', 'may only be set through BULWARK_MASTER_KEY']) {
      assert.ok(text.includes(needle), `missing a problem about ${needle} in:\n${text}`);
    }
    assert.equal(problems.length, 7);
  });

  it('refuses a non-loopback HTTP address unless the operator accepts plain HTTP explicitly', () => {
    const problems = problemsOf(() => loadConfig({ flags: { 'http.host': '0.0.0.0' } }));
    assert.match(problems.join('\n'), /not a loopback address/);
    assert.equal(loadConfig({ flags: { 'http.host': '0.0.0.0', 'http.allowInsecure': true } }).http.host, '0.0.0.0');
    assert.equal(loadConfig({ flags: { 'http.host': '127.0.0.1' } }).http.host, '127.0.0.1');
    assert.equal(loadConfig({ flags: { 'http.host': '0.0.0.0', 'http.tls': true } }).http.tls, true, 'TLS makes a non-loopback address safe to serve');
    assert.match(problemsOf(() => loadConfig({ flags: { 'http.tls': true, 'http.tlsCertFile': '/etc/api.crt' } })).join('\n'), /give both \(a certificate and its key\) or neither/);
    assert.match(problemsOf(() => loadConfig({ flags: { 'http.tlsCertFile': '/etc/api.crt', 'http.tlsKeyFile': '/etc/api.key' } })).join('\n'), /http\.tls is off/);
  });

  it('keeps CoAP (no DTLS) on loopback unless the operator declares the network trusted', () => {
    assert.equal(loadConfig({}).coap.enabled, false);
    assert.match(problemsOf(() => loadConfig({ file: { coap: { enabled: true, host: '0.0.0.0' } } })).join('\n'), /coap.trustedNetwork/);
    assert.equal(loadConfig({ file: { coap: { enabled: true, host: '0.0.0.0', trustedNetwork: true } } }).coap.host, '0.0.0.0');
  });

  it('names every environment variable after its setting', () => {
    assert.equal(envName('http.bodyLimitBytes'), 'BULWARK_HTTP_BODY_LIMIT_BYTES');
    assert.equal(envName('dataDir'), 'BULWARK_DATA_DIR');
    const names = SETTINGS.map((s) => envName(s.key));
    assert.equal(new Set(names).size, names.length);
  });
});
