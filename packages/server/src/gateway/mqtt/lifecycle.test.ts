import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type mqtt from 'mqtt';
import { startTestServer, tempDir } from '../../testing/harness.js';
import { closed, connect, connectDevice, enrollDevice, makeDeviceKeys, tlsOptions } from '../../testing/devices.js';

const withinMs = async (ms: number, p: Promise<void>, what: string) => {
  const t0 = performance.now();
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    p,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
    }),
  ]);
  clearTimeout(timer);
  return performance.now() - t0;
};

describe('device lifecycle at the gateway', () => {
  it('disconnects a revoked device at once, refuses its handshakes, and publishes it in the CRL that OpenSSL checks', async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    const d = await enrollDevice(s, admin, 'cam-7');
    const client = await connectDevice(s, d);
    t.after(() => client.end(true));
    const gone = closed(client);
    const revoked = await s.api('POST', '/api/v1/devices/cam-7/revoke', { token: admin, body: { reason: 'key compromise' } });
    assert.equal(revoked.body.revoked, 1);
    const ms = await withinMs(10_000, gone, 'disconnecting the revoked device');
    console.log(`revoked device disconnected after ${ms.toFixed(1)} ms`);
    await assert.rejects(connectDevice(s, d), 'a revoked certificate must not connect again');
    const metrics = (await s.api('GET', '/metrics')).text;
    assert.match(metrics, /bulwark_mqtt_tls_refused_total\{reason="revoked"\} 1/);
    assert.match(metrics, /bulwark_mqtt_disconnects_total\{reason="certificate_revoked"\} 1/);
    const device = await s.api('GET', '/api/v1/devices/cam-7', { token: admin });
    assert.equal(device.body.connectivity.lastDisconnectReason, 'certificate_revoked');

    const dir = tempDir(t);
    const [root, issuing] = d.caPem.split(/(?<=-----END CERTIFICATE-----)\s*/).filter((p) => p.includes('BEGIN'));
    writeFileSync(join(dir, 'root.pem'), `${root}\n`);
    writeFileSync(join(dir, 'issuing.pem'), `${issuing}\n`);
    writeFileSync(join(dir, 'device.pem'), d.certPem);
    writeFileSync(join(dir, 'crl.pem'), (await s.api('GET', '/api/v1/pki/crl.pem')).text);
    const verdict = spawnSync('openssl', ['verify', '-crl_check', '-CAfile', 'root.pem', '-untrusted', 'issuing.pem', '-CRLfile', 'crl.pem', 'device.pem'], { cwd: dir, encoding: 'utf8' });
    assert.notEqual(verdict.status, 0);
    assert.match(verdict.stdout + verdict.stderr, /certificate revoked/);
    const serials = execFileSync('openssl', ['crl', '-in', 'crl.pem', '-noout', '-text'], { cwd: dir, encoding: 'utf8' });
    assert.match(serials.replace(/\s/g, '').toLowerCase(), new RegExp(d.serial.replace(/^0+/, '')));
    const audit = await s.api('GET', '/api/v1/audit?action=device.revoke', { token: admin });
    assert.equal(audit.body[0]?.target, 'cam-7');
  });

  it('ends the session of a suspended device and refuses it until it is resumed; decommissioning is final', async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    const d = await enrollDevice(s, admin, 'pump-1');
    const first = await connectDevice(s, d);
    t.after(() => first.end(true));
    const gone = closed(first);
    assert.equal((await s.api('POST', '/api/v1/devices/pump-1/suspend', { token: admin })).body.state, 'suspended');
    await withinMs(10_000, gone, 'disconnecting the suspended device');
    await assert.rejects(connectDevice(s, d), /Not authorized/i);
    assert.equal((await s.api('POST', '/api/v1/devices/pump-1/resume', { token: admin })).body.state, 'active');
    const again = await connectDevice(s, d);
    const goneAgain = closed(again);
    assert.equal((await s.api('POST', '/api/v1/devices/pump-1/decommission', { token: admin })).body.state, 'decommissioned');
    await withinMs(10_000, goneAgain, 'disconnecting the decommissioned device');
    const resume = await s.api('POST', '/api/v1/devices/pump-1/resume', { token: admin });
    assert.equal(resume.status, 409);
    assert.equal(resume.body.error.code, 'BULWARK_ERR_LIFECYCLE');
    await assert.rejects(connectDevice(s, d));
    const claim = await s.api('POST', '/api/v1/devices/pump-1/claim-tokens', { token: admin, body: {} });
    assert.equal(claim.status, 409, 'a decommissioned device cannot be enrolled again');
  });

  it('disconnects a device that breaks a size limit or the hard abuse bound on held publishes, and counts it', async (t) => {
    const s = await startTestServer(t, { config: { mqtt: { maxPayloadBytes: 1024, maxTopicLength: 40, publishRatePerSecond: 1, publishBurst: 5, publishBacklogLimit: 5 } } });
    const admin = await s.tokenFor(s.adminKey);
    const d = await enrollDevice(s, admin, 'm1');
    const cases: [string, (c: mqtt.MqttClient) => void][] = [
      ['payload_size', (c) => c.publish('devices/m1/telemetry', Buffer.alloc(2048), { qos: 1 })],
      ['topic_length', (c) => c.publish(`devices/m1/telemetry/${'x'.repeat(40)}`, 'x', { qos: 1 })],
      ['topic_depth', (c) => c.publish('devices/m1/telemetry/a/b/c/d/e/f', 'x', { qos: 1 })],
      // Over its rate a device is only slowed; 20 publishes at once against a burst of 5 leave 15 held, past the bound of 5.
      [
        'publish_backlog',
        (c) => {
          for (let i = 0; i < 20; i += 1) c.publish('devices/m1/telemetry', String(i), { qos: 0 });
        },
      ],
    ];
    for (const [limit, misbehave] of cases) {
      const c = await connectDevice(s, d);
      t.after(() => c.end(true));
      const gone = closed(c);
      misbehave(c);
      await withinMs(5000, gone, `disconnect for ${limit}`);
      assert.match((await s.api('GET', '/metrics')).text, new RegExp(`bulwark_mqtt_limit_hits_total\\{limit="${limit}"\\} [1-9]`));
    }
    assert.match((await s.api('GET', '/metrics')).text, /bulwark_mqtt_disconnects_total\{reason="publish_backlog_exceeded"\} 1/);
  });

  it('rotates a certificate over MQTT without losing a message, then retires the old one on first use of the new', async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    const d = await enrollDevice(s, admin, 'gw-1');
    const old = await connectDevice(s, d, { clean: false });
    t.after(() => old.end(true));
    await old.subscribeAsync('devices/gw-1/#', { qos: 1 });
    const received: string[] = [];
    old.on('message', (topic, payload) => {
      if (topic.endsWith('/telemetry')) received.push(payload.toString());
    });
    for (let i = 0; i < 5; i += 1) await old.publishAsync('devices/gw-1/telemetry', `m${i}`, { qos: 1 });

    const next = await makeDeviceKeys('gw-1');
    const result = new Promise<{ certificate: string; serial: string }>((resolve) =>
      old.on('message', (topic, payload) => {
        if (topic === 'devices/gw-1/certs/rotate/result') resolve(JSON.parse(payload.toString()));
      }),
    );
    await old.publishAsync('devices/gw-1/certs/rotate', JSON.stringify({ csr: next.csrPem }), { qos: 1 });
    const issued = await result;
    assert.ok(issued.certificate.includes('BEGIN CERTIFICATE'), JSON.stringify(issued));
    for (let i = 5; i < 10; i += 1) await old.publishAsync('devices/gw-1/telemetry', `m${i}`, { qos: 1 });
    assert.equal(old.connected, true, 'the old certificate keeps working until the new one is used');

    const renewed = { ...d, keyPem: next.keyPem, certPem: issued.certificate };
    const oldGone = closed(old);
    const fresh = await connect(tlsOptions(s, renewed, 'gw-1', { clean: false }));
    t.after(() => fresh.end(true));
    await oldGone;
    fresh.on('message', (topic, payload) => {
      if (topic.endsWith('/telemetry')) received.push(payload.toString());
    });
    await fresh.subscribeAsync('devices/gw-1/#', { qos: 1 });
    const last = new Promise<void>((resolve) =>
      fresh.on('message', (_t, p) => {
        if (p.toString() === 'm14') resolve();
      }),
    );
    for (let i = 10; i < 15; i += 1) await fresh.publishAsync('devices/gw-1/telemetry', `m${i}`, { qos: 1 });
    await withinMs(5000, last, 'the last message');
    assert.deepEqual(
      [...new Set(received)].sort((a, b) => Number(a.slice(1)) - Number(b.slice(1))),
      Array.from({ length: 15 }, (_, i) => `m${i}`),
    );

    const certs = (await s.api('GET', '/api/v1/devices/gw-1/certificates', { token: admin })).body as { serial: string; revokedAt: number | null; revocationReason: string | null }[];
    assert.equal(certs.length, 2);
    assert.equal(certs.find((c) => c.serial === d.serial)?.revocationReason, 'superseded');
    assert.equal(certs.find((c) => c.serial === issued.serial)?.revokedAt, null);
    await assert.rejects(connectDevice(s, d), 'the retired certificate no longer connects');
    const rotated = await s.api('GET', '/api/v1/audit?action=certificate.rotate', { token: admin });
    assert.deepEqual([rotated.body[0]?.actor, rotated.body[0]?.details?.serial], ['device:gw-1', issued.serial]);
    const retired = await s.api('GET', '/api/v1/audit?action=certificate.revoke', { token: admin });
    assert.deepEqual([retired.body[0]?.target, retired.body[0]?.details?.reason], [d.serial, 'superseded']);
  });

  it('retires the old certificate when a device enrolls again (after a reset)', async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    const first = await enrollDevice(s, admin, 'rst-1');
    const claim = await s.api('POST', '/api/v1/devices/rst-1/claim-tokens', { token: admin, body: {} });
    const keys = await makeDeviceKeys('rst-1');
    const again = await s.api('POST', '/api/v1/enroll', { body: { token: claim.body.token, csr: keys.csrPem } });
    assert.equal(again.status, 201);
    const second = { ...first, keyPem: keys.keyPem, certPem: again.body.certificate as string };
    const c = await connect(tlsOptions(s, second, 'rst-1'));
    await c.endAsync();
    await assert.rejects(connectDevice(s, first), 'the certificate from before the reset is retired once the new one is used');
  });
});
