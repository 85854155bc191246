import assert from 'node:assert/strict';
import { join } from 'node:path';
import { type TestContext, it } from 'node:test';
import { type DeviceFiles, type Platform, enrolled, publish, startPlatform } from './support/devices.js';
import { describe, runTool } from './support/tools.js';

/**
 * What the MQTT gateway refuses, seen from stock clients: no certificate, a certificate from
 * another CA, a client id that is not the certificate's device, TLS below 1.2 and suites
 * without AEAD. The refusals must come from the server (OpenSSL is told to offer them).
 */

function sClient(t: TestContext, p: Platform, args: readonly string[]) {
  return runTool(t, 'openssl', ['s_client', '-connect', `127.0.0.1:${p.mqttPort}`, '-verify_return_error', ...args], { input: '' });
}

it("refuses connections without the device's own platform certificate, old TLS and non-AEAD suites", { timeout: 90_000 }, async (t) => {
  const p = await startPlatform(t);
  const d1 = await enrolled(p, 'sensor-1');
  const d2 = await enrolled(p, 'sensor-2');
  const client = (f: DeviceFiles) => ['-cert', f.cert, '-key', f.key, '-CAfile', f.ca];

  await t.test('the enrolled device connects (the baseline)', async () => {
    const r = await publish(t, p, 'sensor-1', d1);
    assert.equal(r.code, 0, describe(r));
  });

  await t.test('mosquitto_pub without a client certificate is refused', async () => {
    const r = await publish(t, p, 'sensor-1', { ca: d1.ca });
    assert.notEqual(r.code, 0, describe(r));
  });

  await t.test('a self-signed certificate naming the device is refused', async () => {
    const key = join(p.dir, 'forged.key');
    const cert = join(p.dir, 'forged.crt');
    const made = await runTool(t, 'openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=sensor-1', '-addext', 'subjectAltName=URI:urn:bulwark:device:sensor-1']);
    assert.equal(made.code, 0, describe(made));
    const r = await publish(t, p, 'sensor-1', { ca: d1.ca, key, cert });
    assert.notEqual(r.code, 0, describe(r));
  });

  await t.test('the right certificate with another client id is refused, both ways', async () => {
    const other = await publish(t, p, 'other', d1, 'devices/sensor-1/telemetry');
    assert.notEqual(other.code, 0, describe(other));
    assert.match(other.stderr, /identifier rejected/i);
    const impostor = await publish(t, p, 'sensor-2', d1);
    assert.notEqual(impostor.code, 0, describe(impostor));
    const own = await publish(t, p, 'sensor-2', d2);
    assert.equal(own.code, 0, describe(own));
  });

  await t.test('openssl s_client: TLS 1.0 and 1.1 get a protocol_version alert from the server', async () => {
    for (const version of ['-tls1', '-tls1_1']) {
      // SECLEVEL=0 lets OpenSSL 3 offer the old versions at all: the refusal is the server's.
      const r = await sClient(t, p, [version, '-cipher', 'DEFAULT@SECLEVEL=0', ...client(d1)]);
      assert.notEqual(r.code, 0, `${version}: ${describe(r)}`);
      assert.match(r.stderr, /alert protocol version/, `${version}: ${describe(r)}`);
    }
  });

  await t.test('openssl s_client: TLS 1.2 suites without AEAD get a handshake_failure alert', async () => {
    for (const cipher of ['AES128-SHA256', 'ECDHE-ECDSA-AES128-SHA256', 'ECDHE-ECDSA-AES256-SHA']) {
      const r = await sClient(t, p, ['-tls1_2', '-cipher', cipher, ...client(d1)]);
      assert.notEqual(r.code, 0, `${cipher}: ${describe(r)}`);
      assert.match(r.stderr, /alert handshake failure/, `${cipher}: ${describe(r)}`);
    }
  });

  await t.test('openssl s_client: TLS 1.2 with an AEAD suite and TLS 1.3 verify both ways', async () => {
    const v12 = await sClient(t, p, ['-tls1_2', '-verify_ip', '127.0.0.1', ...client(d1)]);
    assert.equal(v12.code, 0, describe(v12));
    assert.match(v12.stdout, /Cipher is ECDHE-ECDSA-(AES128-GCM-SHA256|AES256-GCM-SHA384|CHACHA20-POLY1305)/);
    assert.match(v12.stdout, /Verify return code: 0 \(ok\)/);
    const v13 = await sClient(t, p, ['-tls1_3', '-verify_ip', '127.0.0.1', ...client(d1)]);
    assert.equal(v13.code, 0, describe(v13));
    assert.match(v13.stdout, /TLSv1\.3/);
  });

  await t.test('openssl s_client: TLS 1.2 without a client certificate is refused in the handshake', async () => {
    const r = await sClient(t, p, ['-tls1_2', '-CAfile', d1.ca]);
    assert.notEqual(r.code, 0, describe(r));
    assert.match(r.stderr, /alert (handshake failure|certificate required)/);
  });
});
