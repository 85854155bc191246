import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { tempDir } from '../testing/harness.js';
import { buildCrl, createCaPair, crlPem, deviceIdOf, issueDeviceCertificate, issueServerCertificate, publicKeyFromCsr } from './pki.js';
import { x509 } from './x509.js';

const openssl = (args: string[], cwd: string) => spawnSync('openssl', args, { cwd, encoding: 'utf8' });

function opensslCsr(dir: string, name: string, keyArgs = ['ecparam', '-genkey', '-name', 'prime256v1', '-noout', '-out']): string {
  execFileSync('openssl', [...keyArgs, join(dir, `${name}.key`)], { stdio: 'ignore' });
  execFileSync('openssl', ['req', '-new', '-key', join(dir, `${name}.key`), '-subj', `/CN=${name}`, '-out', join(dir, `${name}.csr`)], { stdio: 'ignore' });
  return execFileSync('cat', [join(dir, `${name}.csr`)], { encoding: 'utf8' });
}

describe('device PKI, judged by OpenSSL', () => {
  it('issues a device certificate from an OpenSSL CSR that OpenSSL verifies, and a CRL that revokes it', async (t) => {
    const dir = tempDir(t);
    const now = Date.now();
    const { root, issuing } = await createCaPair(now, 'Test');
    const csr = opensslCsr(dir, 'sensor-1');
    const cert = await issueDeviceCertificate(issuing, { deviceId: 'sensor-1', publicKey: await publicKeyFromCsr(csr), nowMs: now, validityDays: 30 });
    assert.equal(deviceIdOf(cert), 'sensor-1');
    writeFileSync(join(dir, 'root.pem'), root.cert.toString('pem'));
    writeFileSync(join(dir, 'issuing.pem'), issuing.cert.toString('pem'));
    writeFileSync(join(dir, 'device.pem'), cert.toString('pem'));
    const ok = openssl(['verify', '-CAfile', 'root.pem', '-untrusted', 'issuing.pem', '-purpose', 'sslclient', 'device.pem'], dir);
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    const text = openssl(['x509', '-in', 'device.pem', '-noout', '-text'], dir).stdout;
    assert.match(text, /URI:urn:bulwark:device:sensor-1/);
    assert.match(text, /TLS Web Client Authentication/);
    assert.match(text, /CA:FALSE/);

    const empty = await buildCrl(issuing, [], 1, now, now + 86_400_000);
    writeFileSync(join(dir, 'crl.pem'), crlPem(empty));
    const before = openssl(['verify', '-crl_check', '-CAfile', 'root.pem', '-untrusted', 'issuing.pem', '-CRLfile', 'crl.pem', 'device.pem'], dir);
    assert.equal(before.status, 0, before.stdout + before.stderr);
    const crl = await buildCrl(issuing, [{ serial: cert.serialNumber, revokedAtMs: now, reason: x509.X509CrlReason.keyCompromise }], 2, now, now + 86_400_000);
    writeFileSync(join(dir, 'crl.pem'), crlPem(crl));
    const after = openssl(['verify', '-crl_check', '-CAfile', 'root.pem', '-untrusted', 'issuing.pem', '-CRLfile', 'crl.pem', 'device.pem'], dir);
    assert.notEqual(after.status, 0);
    assert.match(after.stdout + after.stderr, /certificate revoked/);
    assert.match(openssl(['crl', '-in', 'crl.pem', '-noout', '-text'], dir).stdout, /X509v3 CRL Number:\s+2/);
  });

  it('names localhost and 127.0.0.1 in the gateway certificate', async () => {
    const { issuing } = await createCaPair(Date.now(), 'Test');
    const { cert } = await issueServerCertificate(issuing, ['mqtt.example.test', '10.1.2.3'], Date.now());
    const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
    const names = san?.names.items.map((n) => `${n.type}:${n.value}`) ?? [];
    for (const n of ['dns:localhost', 'dns:mqtt.example.test', 'ip:127.0.0.1', 'ip:10.1.2.3']) assert.ok(names.includes(n), `${n} in ${names.join(', ')}`);
  });

  it('refuses CSRs that are not P-256, that are tampered with, and device ids with topic characters', async (t) => {
    const dir = tempDir(t);
    const { issuing } = await createCaPair(Date.now(), 'Test');
    const rsa = opensslCsr(dir, 'rsa-dev', ['genrsa', '-out']);
    await assert.rejects(publicKeyFromCsr(rsa), /ECDSA P-256/);
    await assert.rejects(publicKeyFromCsr('-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----'), (e: { code?: string }) => e.code === 'BULWARK_ERR_CSR_INVALID');
    const good = opensslCsr(dir, 'good');
    const der = Buffer.from(good.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    der[der.length - 5] = (der[der.length - 5] ?? 0) ^ 0xff;
    await assert.rejects(publicKeyFromCsr(der.toString('base64')), (e: { code?: string }) => e.code === 'BULWARK_ERR_CSR_INVALID');
    const key = await publicKeyFromCsr(good);
    for (const bad of ['a/b', 'a+b', 'a#', 'a\u0000b', '$SYS']) {
      await assert.rejects(issueDeviceCertificate(issuing, { deviceId: bad, publicKey: key, nowMs: Date.now(), validityDays: 1 }), (e: { code?: string }) => e.code === 'BULWARK_ERR_DEVICE_ID_INVALID', JSON.stringify(bad));
    }
  });
});
