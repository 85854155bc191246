import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';
import { startTestServer } from '../../testing/harness.js';
import { closed, connect, connectDevice, enrollDevice, makeDeviceKeys, subscribeGrant, tlsOptions } from '../../testing/devices.js';
import { issueDeviceCertificate, publicKeyFromCsr } from '../../identity/pki.js';

async function fleet(t: Parameters<typeof startTestServer>[0], config: Record<string, unknown> = {}) {
  const s = await startTestServer(t, { config });
  const admin = await s.tokenFor(s.adminKey);
  return { s, admin };
}

const metric = async (s: { api: (m: string, p: string) => Promise<{ text: string }> }, line: RegExp) => line.exec((await s.api('GET', '/metrics')).text)?.[1];

describe('the MQTT gateway', () => {
  it('lets an enrolled device publish and receive inside its own tree, and tracks its connectivity', async (t) => {
    const { s, admin } = await fleet(t);
    const d = await enrollDevice(s, admin, 'sensor-1');
    const client = await connectDevice(s, d);
    t.after(() => client.endAsync());
    const granted = await client.subscribeAsync('devices/sensor-1/#', { qos: 1 });
    assert.equal(granted[0]?.qos, 1);
    const got = new Promise<string>((resolve) => client.once('message', (_topic, payload) => resolve(payload.toString())));
    // A device event (DeviceEvent in @bulwark/protocol): stored, and echoed to the device's own subscription.
    await client.publishAsync('devices/sensor-1/events', '{"id":"e1","type":"boot","ts":1}', { qos: 1 });
    assert.equal(await got, '{"id":"e1","type":"boot","ts":1}');
    const shown = await s.api('GET', '/api/v1/devices/sensor-1', { token: admin });
    assert.equal(shown.body.state, 'active');
    assert.equal(shown.body.connectivity.online, true);
    assert.equal(shown.body.connectivity.connectCount, 1);
    await client.endAsync();
    const after = await s.api('GET', '/api/v1/devices/sensor-1', { token: admin });
    assert.equal(after.body.connectivity.online, false);
    assert.equal(after.body.connectivity.lastDisconnectReason, 'client_disconnected');
  });

  it('refuses a client id that differs from the certificate, and a will outside the tree', async (t) => {
    const { s, admin } = await fleet(t);
    const d = await enrollDevice(s, admin, 'sensor-1');
    await assert.rejects(connect(tlsOptions(s, d, 'sensor-2')), /Identifier rejected|identifier/i);
    await assert.rejects(connect(tlsOptions(s, d, 'sensor-1', { will: { topic: 'devices/sensor-2/events', payload: Buffer.from('x'), qos: 0, retain: false } })), /Not authorized/i);
    const ok = await connect(tlsOptions(s, d, 'sensor-1', { will: { topic: 'devices/sensor-1/events', payload: Buffer.from('gone'), qos: 0, retain: false } }));
    await ok.endAsync();
    assert.equal(await metric(s, /bulwark_mqtt_connect_refused_total\{reason="client_id_mismatch"\} (\d+)/), '1');
    assert.equal(await metric(s, /bulwark_mqtt_acl_denied_total\{kind="will",reason="outside_own_tree"\} (\d+)/), '1');
  });

  it('stops every escape attempt: no message crosses between devices', async (t) => {
    const { s, admin } = await fleet(t);
    const d1 = await enrollDevice(s, admin, 'd1');
    const d2 = await enrollDevice(s, admin, 'd2');
    const victim = await connectDevice(s, d2);
    t.after(() => victim.endAsync());
    const leaked: string[] = [];
    victim.on('message', (topic) => leaked.push(topic));
    await victim.subscribeAsync('devices/d2/#', { qos: 1 });

    const attacker = await connectDevice(s, d1);
    t.after(() => attacker.end(true));
    const deniedFilters = [
      '#',
      'devices/#',
      'devices/+/telemetry',
      'devices/+/#',
      'devices/d2/#',
      'devices/d2/telemetry',
      '$SYS/#',
      '$SYS/broker/clients/total',
      '+/+/+',
      '+/d2/#',
      'devices/d1x/#',
      'devices//#',
      'devices/d1',
      'Devices/d2/#',
      'devices/d1/a/b/c/d/e/f/g/h',
    ];
    for (const filter of deniedFilters) {
      assert.equal(await subscribeGrant(attacker, filter), 128, `SUBACK for ${filter}`);
    }
    await attacker.endAsync();

    const deniedTopics = [
      'devices/d2/telemetry',
      'devices/d2/twin/reported',
      'devices/d1/twin/desired',
      'devices/d1/commands/reboot',
      'devices/d1/ota/job',
      'devices/d1/../d2/telemetry',
      'devices/d1/telemetry/a/b',
      'devices/D2/telemetry',
      '$SYS/broker/uptime',
      'devices/d1/errors',
      'devices/d1/telemetry/',
    ];
    for (const topic of deniedTopics) {
      const c = await connectDevice(s, d1);
      t.after(() => c.end(true));
      const gone = closed(c);
      c.publish(topic, 'escape', { qos: 1 });
      await gone;
      c.end(true);
    }
    assert.equal(deniedFilters.length + deniedTopics.length + 1 >= 20, true);
    // The victim's own traffic still flows: a message it sends itself arrives, nothing else did.
    const own = new Promise<string>((resolve) => victim.once('message', (topic) => resolve(topic)));
    await victim.publishAsync('devices/d2/events', '{"id":"ok","type":"ping","ts":1}', { qos: 1 });
    assert.equal(await own, 'devices/d2/events');
    assert.deepEqual(leaked, ['devices/d2/events']);
    const denials = (await s.api('GET', '/metrics')).text.split('\n').filter((l) => l.startsWith('bulwark_mqtt_acl_denied_total'));
    const total = denials.reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);
    assert.equal(total, deniedFilters.length + deniedTopics.length);
  });

  it('refuses retained publishes and retained or oversized wills from devices', async (t) => {
    const { s, admin } = await fleet(t, { mqtt: { maxPayloadBytes: 1024 } });
    const d = await enrollDevice(s, admin, 'ret-1');
    const c = await connectDevice(s, d);
    t.after(() => c.end(true));
    const gone = closed(c);
    c.publish('devices/ret-1/telemetry/s0', 'x'.repeat(100), { qos: 1, retain: true });
    await gone;
    assert.match((await s.api('GET', '/metrics')).text, /bulwark_mqtt_acl_denied_total\{kind="publish",reason="retain_not_allowed"\} 1/);
    const will = (retain: boolean, bytes: number) => ({ will: { topic: 'devices/ret-1/events', payload: Buffer.alloc(bytes), qos: 0 as const, retain } });
    await assert.rejects(connectDevice(s, d, will(true, 10)), /Not authorized/i);
    await assert.rejects(connectDevice(s, d, will(false, 4096)), /Not authorized/i);
    const ok = await connectDevice(s, d, will(false, 10));
    await ok.endAsync();
  });

  it('refuses certificates that are missing, foreign, expired or not yet valid at the handshake', async (t) => {
    const { s, admin } = await fleet(t);
    const good = await enrollDevice(s, admin, 'good');
    const other = await startTestServer(t);
    const foreign = await enrollDevice(other, await other.tokenFor(other.adminKey), 'good');
    const keys = await makeDeviceKeys('good');
    const pub = await publicKeyFromCsr(keys.csrPem);
    const issuing = s.server.identity.authority.issuing;
    const expired = await issueDeviceCertificate(issuing, { deviceId: 'good', publicKey: pub, nowMs: Date.now() - 10 * 86_400_000, validityDays: 1 });
    const future = await issueDeviceCertificate(issuing, { deviceId: 'good', publicKey: pub, nowMs: Date.now() + 10 * 86_400_000, validityDays: 30 });
    const attempts: [string, Parameters<typeof tlsOptions>[1]][] = [
      ['foreign CA', { keyPem: foreign.keyPem, certPem: foreign.certPem, caPem: good.caPem }],
      ['expired', { keyPem: keys.keyPem, certPem: expired.toString('pem'), caPem: good.caPem }],
      ['not yet valid', { keyPem: keys.keyPem, certPem: future.toString('pem'), caPem: good.caPem }],
    ];
    for (const [what, creds] of attempts) await assert.rejects(connect(tlsOptions(s, creds, 'good')), `${what} must be refused`);
    const { key: _k, cert: _c, ...noCert } = tlsOptions(s, good, 'good');
    await assert.rejects(connect(noCert), 'no certificate must be refused');
    const refusals = (await s.api('GET', '/metrics')).text.split('\n').filter((l) => l.startsWith('bulwark_mqtt_tls_refused_total'));
    for (const reason of ['unknown_ca', 'expired', 'not_yet_valid', 'no_certificate']) {
      assert.ok(refusals.includes(`bulwark_mqtt_tls_refused_total{reason="${reason}"} 1`), `${reason} in\n${refusals.join('\n')}`);
    }
    const c = await connectDevice(s, good);
    await c.endAsync();
  });
});

describe('the gateway TLS configuration', () => {
  it('refuses TLS 1.0 and 1.1 and non-AEAD suites, and accepts TLS 1.2 and 1.3 with AEAD', async (t) => {
    const { s, admin } = await fleet(t);
    const d = await enrollDevice(s, admin, 'tls-1');
    const handshake = (options: ConnectionOptions) =>
      new Promise<string>((resolve, reject) => {
        const socket = tlsConnect({ host: '127.0.0.1', port: s.server.mqttPort, servername: 'localhost', key: d.keyPem, cert: d.certPem, ca: d.caPem, ...options }, () => {
          const suite = `${socket.getProtocol()} ${socket.getCipher().name}`;
          socket.end();
          resolve(suite);
        });
        socket.once('error', reject);
      });
    await assert.rejects(handshake({ minVersion: 'TLSv1', maxVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0' }), 'TLS 1.0');
    await assert.rejects(handshake({ minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' }), 'TLS 1.1');
    await assert.rejects(handshake({ maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA:ECDHE-ECDSA-AES128-SHA' }), 'CBC suites');
    assert.match(await handshake({ maxVersion: 'TLSv1.2' }), /^TLSv1\.2 ECDHE-ECDSA-(AES\d+-GCM|CHACHA20-POLY1305)/);
    assert.match(await handshake({}), /^TLSv1\.3 TLS_(AES_\d+_GCM|CHACHA20_POLY1305)/);
  });
});
