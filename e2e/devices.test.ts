import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { parseJson } from './support/cli.js';
import { filesIn, publish, show, startPlatform, subscriber } from './support/devices.js';
import { describe, runTool } from './support/tools.js';

/**
 * A device's life through the real `bulwark` command and stock clients: register, enroll
 * with a key made on the device's side, talk MQTT over mutual TLS with mosquitto, be
 * suspended and resumed, rotate, be revoked (session cut, CRL updated), enroll with only
 * a claim token, be decommissioned.
 */

const mode = (path: string) => statSync(path).mode & 0o777;
/** How long the platform may take to end a session it has cut off. */
const CUT_OFF_MS = 10_000;

it('gives a device an identity and lets stock MQTT clients use it, until it is revoked', { timeout: 600_000 }, async (t) => {
  const p = await startPlatform(t);
  const d1 = filesIn(join(p.dir, 'sensor-1'));

  await t.test('create, list and show', async () => {
    const created = parseJson(await p.ok(['devices', 'create', 'sensor-1', '--serial', 'SN-0001', '--model', 'env-v2', '--hw-rev', 'B', '--tag', 'lab', '--tag', 'floor:2', '--json']));
    assert.equal(created.state, 'manufactured');
    assert.deepEqual(created.tags, ['lab', 'floor:2']);
    assert.equal(created.hardwareRevision, 'B');
    const listed = parseJson(await p.ok(['devices', 'list', '--tag', 'lab', '--json']));
    assert.deepEqual(
      listed.map((d: { id: string }) => d.id),
      ['sensor-1'],
    );
    const table = await p.ok(['devices', 'list', '--model', 'env-v2']);
    assert.match(table.stdout, /id\s+│ state\s+│ model\s+│ firmware\s+│ online\s+│ last seen/);
    assert.match(table.stdout, /sensor-1\s+│ manufactured │ env-v2/);
    assert.match((await p.ok(['devices', 'list', '--state', 'suspended'])).stdout, /No devices match/);
    const stats = await p.ok(['devices', 'stats']);
    assert.match(stats.stdout, /1 devices registered/);
    assert.match(stats.stdout, /by state\s+manufactured 1, provisioned 0/);
    assert.match(stats.stdout, /env-v2\s+│ 1/);
    const shown = parseJson(await p.ok(['devices', 'show', 'sensor-1', '--json']));
    assert.equal(shown.serial, 'SN-0001');
    assert.deepEqual(shown.certificates, []);
  });

  await t.test('groups: dynamic from flags, static with members, used by devices list', async () => {
    await p.ok(['devices', 'create', 'gw-7a', '--model', 'gw-b', '--location', 'site-7']);
    await p.ok(['devices', 'create', 'gw-7b', '--model', 'gw-b', '--location', 'site-7', '--tag', 'canary']);
    const made = await p.ok(['groups', 'create', 'site7-b', '--model', 'gw-b', '--location', 'site-7', '--description', 'model B on site 7']);
    assert.match(made.stdout, /Created dynamic group site7-b \(model=gw-b location=site-7\)/);
    assert.deepEqual(
      parseJson(await p.ok(['devices', 'list', '--group', 'site7-b', '--json'])).map((d: { id: string }) => d.id),
      ['gw-7a', 'gw-7b'],
    );
    await p.ok(['groups', 'set-query', 'site7-b', '--model', 'gw-b', '--tag', 'canary']);
    assert.match((await p.ok(['groups', 'devices', 'site7-b'])).stdout, /gw-7b/);
    await p.ok(['groups', 'create', 'pilot', '--static', '--device', 'gw-7a']);
    const refused = await p.bulwark(['groups', 'add', 'pilot', 'gw-7b', 'ghost']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /no such devices: ghost/);
    const listed = (await p.ok(['groups', 'list'])).stdout;
    assert.match(listed, /pilot\s+│ static/);
    assert.match(listed, /site7-b\s+│ dynamic\s+│ model=gw-b tags=canary/);
  });

  await t.test('enroll makes the key here and writes device.key (0600), device.crt and ca.crt', async () => {
    const r = await p.ok(['devices', 'enroll', 'sensor-1', '--out', d1.dir]);
    assert.match(r.stdout, /Enrolled sensor-1: certificate [0-9a-f]+/);
    for (const f of [d1.key, d1.cert, d1.ca]) assert.ok(existsSync(f), `${f} missing`);
    assert.equal(mode(d1.key), 0o600);
    assert.match(readFileSync(d1.key, 'utf8'), /^-----BEGIN PRIVATE KEY-----\n/);
    const verify = await runTool(t, 'openssl', ['verify', '-CAfile', d1.ca, d1.cert]);
    assert.equal(verify.code, 0, describe(verify));
    assert.match(verify.stdout, /device\.crt: OK/);
    // The certificate certifies the key in device.key, and names the device.
    const fromKey = await runTool(t, 'openssl', ['pkey', '-in', d1.key, '-pubout']);
    const fromCert = await runTool(t, 'openssl', ['x509', '-in', d1.cert, '-noout', '-pubkey', '-subject', '-ext', 'subjectAltName']);
    assert.ok(fromCert.stdout.includes(fromKey.stdout.trim()), `${fromKey.stdout}\n${fromCert.stdout}`);
    assert.match(fromCert.stdout, /subject=CN = sensor-1/);
    assert.match(fromCert.stdout, /URI:urn:bulwark:device:sensor-1/);
    const again = await p.bulwark(['devices', 'enroll', 'sensor-1', '--out', d1.dir]);
    assert.equal(again.code, 2, show(again));
    assert.match(again.stderr, /device\.key already exists/);
  });

  await t.test('mosquitto_rr publishes and receives in one session; mosquitto_pub publishes', async () => {
    const rr = await runTool(t, 'mosquitto_rr', [
      '-h',
      '127.0.0.1',
      '-p',
      String(p.mqttPort),
      '-V',
      'mqttv311',
      '-i',
      'sensor-1',
      '--cafile',
      d1.ca,
      '--cert',
      d1.cert,
      '--key',
      d1.key,
      '-t',
      'devices/sensor-1/time',
      '-e',
      'devices/sensor-1/time',
      '-m',
      'ping-1',
      '-W',
      '10',
    ]);
    assert.equal(rr.code, 0, describe(rr));
    assert.equal(rr.stdout.trim(), 'ping-1');
    const pub = await publish(t, p, 'sensor-1', d1);
    assert.equal(pub.code, 0, describe(pub));
    const d = parseJson(await p.ok(['devices', 'show', 'sensor-1', '--json']));
    assert.equal(d.state, 'active');
    assert.ok(d.connectivity.connectCount >= 2, JSON.stringify(d.connectivity));
    assert.notEqual(d.connectivity.lastSeenAt, null);
    assert.equal(d.certificates.length, 1);
    assert.notEqual(d.certificates[0].firstUsedAt, null);
  });

  await t.test('suspend ends the live session and refuses new ones; resume lets the device back', async () => {
    const sub = await subscriber(t, p, 'sensor-1', d1);
    const started = performance.now();
    await p.ok(['devices', 'suspend', 'sensor-1']);
    const ended = await sub.exit(CUT_OFF_MS);
    t.diagnostic(`session ended ${Math.round(performance.now() - started)} ms after "devices suspend" was started`);
    assert.notEqual(ended.code, 0, describe(ended));
    const refused = await publish(t, p, 'sensor-1', d1);
    assert.notEqual(refused.code, 0, describe(refused));
    assert.match(refused.stderr, /not authori[sz]ed/i);
    await p.ok(['devices', 'resume', 'sensor-1']);
    const back = await publish(t, p, 'sensor-1', d1);
    assert.equal(back.code, 0, describe(back));
  });

  await t.test('certs rotate: a new key in the key directory; the old certificate retires once the new one is used; certs expiring names the new one', async () => {
    const before = parseJson(await p.ok(['certs', 'list', 'sensor-1', '--json']));
    const r = await p.ok(['certs', 'rotate', 'sensor-1', '--key-dir', d1.dir]);
    assert.match(r.stdout, /Issued certificate [0-9a-f]+ for sensor-1/);
    const old = { ...d1, key: `${d1.key}.old`, cert: `${d1.cert}.old` };
    assert.equal(mode(d1.key), 0o600);
    assert.equal(mode(old.key), 0o600);
    assert.notEqual(readFileSync(d1.key, 'utf8'), readFileSync(old.key, 'utf8'));
    const certs = parseJson(await p.ok(['certs', 'list', 'sensor-1', '--json']));
    assert.equal(certs.length, 2);
    assert.equal(certs[0].serial, before[0].serial);
    assert.notEqual(certs[0].supersededAt, null);
    // Overlap: the old files still work until the new certificate is first used.
    assert.equal((await publish(t, p, 'sensor-1', old)).code, 0);
    const fresh = await publish(t, p, 'sensor-1', d1);
    assert.equal(fresh.code, 0, describe(fresh));
    const stale = await publish(t, p, 'sensor-1', old);
    assert.notEqual(stale.code, 0, describe(stale));
    const after = parseJson(await p.ok(['certs', 'list', 'sensor-1', '--json']));
    assert.equal(after[0].revocationReason, 'superseded');
    assert.equal(after[1].revokedAt, null);
    // The expiry report names the device's newest live certificate, not the retired one.
    const ending = parseJson(await p.ok(['certs', 'expiring', '--within', '3650d', '--json']));
    assert.deepEqual(
      ending.filter((c: { deviceId: string }) => c.deviceId === 'sensor-1').map((c: { serial: string }) => c.serial),
      [after[1].serial],
    );
    const bad = await p.bulwark(['certs', 'expiring', '--within', 'soon']);
    assert.equal(bad.code, 2, show(bad));
  });

  await t.test('devices revoke cuts the live session within 10 s, refuses new ones, and the CRL lists the certificate', async () => {
    const sub = await subscriber(t, p, 'sensor-1', d1);
    const started = performance.now();
    const r = await p.ok(['devices', 'revoke', 'sensor-1', '--reason', 'lost in transit']);
    assert.match(r.stdout, /Revoked 1 certificate of sensor-1/);
    const ended = await sub.exit(CUT_OFF_MS);
    t.diagnostic(`session ended ${Math.round(performance.now() - started)} ms after "devices revoke" was started`);
    assert.notEqual(ended.code, 0, describe(ended));
    const refused = await publish(t, p, 'sensor-1', d1);
    assert.notEqual(refused.code, 0, describe(refused));

    const crl = join(p.dir, 'crl.pem');
    const ca = join(p.dir, 'ca.pem');
    await p.ok(['pki', 'crl', '--out', crl]);
    await p.ok(['pki', 'ca', '--out', ca]);
    assert.equal(readFileSync(ca, 'utf8').trim(), readFileSync(d1.ca, 'utf8').trim());
    // ca.crt holds the root and the issuing CA; -crl_check checks the leaf against the issuing CA's CRL.
    const verify = await runTool(t, 'openssl', ['verify', '-crl_check', '-CAfile', d1.ca, '-CRLfile', crl, d1.cert]);
    assert.notEqual(verify.code, 0, describe(verify));
    assert.match(verify.stdout + verify.stderr, /certificate revoked/);
    const text = await runTool(t, 'openssl', ['crl', '-in', crl, '-noout', '-text']);
    const serials = parseJson(await p.ok(['certs', 'list', 'sensor-1', '--json'])).map((c: { serial: string }) => c.serial.toUpperCase());
    for (const serial of serials) assert.ok(text.stdout.toUpperCase().includes(serial), `${serial} not in the CRL:\n${text.stdout}`);
  });

  await t.test('a claim token enrolls once, with no login at all, and never again', async () => {
    await p.ok(['devices', 'create', 'sensor-2', '--model', 'env-v2']);
    const issued = await p.ok(['devices', 'token', 'sensor-2', '--ttl-seconds', '600']);
    const token = issued.stdout.trim();
    assert.match(token, /^bct\.[a-z0-9_]+\.[A-Za-z0-9_-]+$/);
    assert.match(issued.stderr, /works once/);
    const device = { BULWARK_CLI_CONFIG: join(p.dir, 'no-login.json') };
    const d2 = filesIn(join(p.dir, 'sensor-2'));
    const first = await p.bulwark(['devices', 'enroll', 'sensor-2', '--out', d2.dir, '--url', p.url, '--token', token], device);
    assert.equal(first.code, 0, show(first));
    const second = await p.bulwark(['devices', 'enroll', 'sensor-2', '--out', join(p.dir, 'again'), '--url', p.url, '--token', token], device);
    assert.equal(second.code, 1, show(second));
    assert.match(second.stderr, /^error BULWARK_ERR_CLAIM_TOKEN_INVALID: /m);
    assert.equal(existsSync(join(p.dir, 'again', 'device.key')), false);
    assert.equal((await publish(t, p, 'sensor-2', d2)).code, 0);
  });

  await t.test('certs revoke takes one certificate away; decommission retires the device for good', async () => {
    const [cert] = parseJson(await p.ok(['certs', 'list', 'sensor-2', '--json']));
    const r = await p.ok(['certs', 'revoke', cert.serial, '--reason', 'key compromise']);
    assert.match(r.stdout, new RegExp(`Revoked certificate ${cert.serial} of sensor-2 \\(key compromise\\)`));
    assert.notEqual((await publish(t, p, 'sensor-2', filesIn(join(p.dir, 'sensor-2')))).code, 0);
    const receiptFile = join(p.dir, 'sensor-2-receipt.json');
    const gone = parseJson(await p.ok(['devices', 'decommission', 'sensor-2', '--data', 'erase', '--receipt', receiptFile, '--json']));
    assert.equal(gone.state, 'decommissioned');
    assert.deepEqual([gone.receipt.kind, gone.receipt.policy, gone.receipt.deviceId], ['decommission', 'erase', 'sensor-2']);
    assert.deepEqual(JSON.parse(readFileSync(receiptFile, 'utf8')), gone.receipt);
    assert.equal(mode(receiptFile), 0o600);
    assert.match((await p.ok(['receipts', 'verify', receiptFile])).stdout, new RegExp(`Receipt ${gone.receipt.id} is genuine`));
    const refused = await p.bulwark(['devices', 'enroll', 'sensor-2', '--out', join(p.dir, 'zombie')]);
    assert.equal(refused.code, 1, show(refused));
    assert.match(refused.stderr, /^error BULWARK_ERR_LIFECYCLE: /m);
    // Paging: one device a page, followed to the end (the groups step's two gateways included).
    const all = parseJson(await p.ok(['devices', 'list', '--all', '--limit', '1', '--json']));
    assert.deepEqual(
      all.map((d: { id: string }) => d.id),
      ['gw-7a', 'gw-7b', 'sensor-1', 'sensor-2'],
    );
  });
});

it('prints the MQTT address and refuses a taken MQTT port, naming --mqtt-port', async (t) => {
  const p = await startPlatform(t);
  const r = await p.bulwark(['start', '--data', join(p.dir, 'other'), '--http-port', '0', '--mqtt-port', String(p.mqttPort), '--mqtt-host', '127.0.0.1']);
  assert.equal(r.code, 1, show(r));
  assert.match(r.stderr, new RegExp(`^error EADDRINUSE: 127\\.0\\.0\\.1:${p.mqttPort} is already in use: .* --mqtt-port`, 'm'));
});
