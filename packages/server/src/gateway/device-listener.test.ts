import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { it } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { promisify } from 'node:util';
import type { IClientOptions } from 'mqtt';
import pino from 'pino';
import { type EnrolledDevice, closed, connectDevice, enrollDevice } from '../testing/devices.js';
import { type TestServer, startTestServer, tempDir } from '../testing/harness.js';
import { type HaproxyOptions, describeWith, startHaproxy } from '../testing/services.js';
import { SIGNATURE } from './proxy-protocol.js';

/**
 * The device listeners behind a real HAProxy that writes PROXY protocol v2 headers
 * (`send-proxy-v2`): the device's own address reaches the logs an operator reads; a header
 * from an address that is not a listed balancer is never believed; a listed balancer that
 * sends none is closed and counted; with the setting off nothing changes.
 *
 * Devices connect from 127.0.0.2 (loopback is a /8 here), HAProxy reaches the server from
 * 127.0.0.1, and a stranger connects from 127.0.0.3.
 */

const run = promisify(execFile);
const DEVICE_ADDRESS = '127.0.0.2';
const STRANGER = '127.0.0.3';
const FORGED = '198.51.100.77';

type LogLine = Record<string, unknown> & { msg?: string };

/** A pino logger that keeps every line; `next(match, from)` resolves with the first line from the `from`-th on (logged already or later) that matches. */
function logCapture() {
  const lines: LogLine[] = [];
  const waiters: { match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  const logger = pino(
    { level: 'info' },
    {
      write(text: string) {
        const line = JSON.parse(text) as LogLine;
        lines.push(line);
        for (const w of [...waiters]) {
          if (!w.match(line)) continue;
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      },
    },
  );
  const next = (match: (l: LogLine) => boolean, from = 0) =>
    new Promise<LogLine>((resolve) => {
      const found = lines.slice(from).find(match);
      if (found) resolve(found);
      else waiters.push({ match, resolve });
    });
  return { logger, lines, next };
}

async function metric(s: TestServer, name: string, labels: Record<string, string>): Promise<number> {
  const m = s.server.metrics.registry.getSingleMetric(name);
  if (!m) return 0;
  const { values } = await m.get();
  return values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((sum, v) => sum + v.value, 0);
}

async function serverWithDevice(t: TestContext, proxyProtocolFrom?: string) {
  const log = logCapture();
  const s = await startTestServer(t, { logger: log.logger, config: proxyProtocolFrom === undefined ? {} : { gateway: { proxyProtocolFrom } } });
  const admin = await s.tokenFor(s.adminKey);
  const device = await enrollDevice(s, admin, 'pp-device-1');
  return { s, log, device };
}

async function balancer(t: TestContext, s: TestServer, port: number, options: HaproxyOptions) {
  const lb = await startHaproxy([{ name: 'node-1', port, healthPort: Number(new URL(s.url).port) }], options);
  t.after(() => lb.stop());
  return lb;
}

async function mqttSession(t: TestContext, s: TestServer, d: EnrolledDevice, extra: Record<string, unknown>) {
  const client = await connectDevice(s, d, extra);
  t.after(() => client.end(true));
  return client;
}

/** A TLS handshake with the device's credentials after `prefix` was written on the TCP connection; resolves with the error it ends in. */
function handshakeAfter(port: number, localAddress: string, prefix: Buffer, d: EnrolledDevice): Promise<Error> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ port, host: '127.0.0.1', localAddress }, () => {
      socket.write(prefix);
      const tls = tlsConnect({ socket, key: d.keyPem, cert: d.certPem, ca: d.caPem, servername: 'localhost' });
      tls.once('secureConnect', () => {
        tls.destroy();
        resolve(new Error('handshake completed'));
      });
      tls.once('error', (err) => resolve(err));
    });
    socket.on('error', (err) => resolve(err));
  });
}

/** A PROXY v2 header claiming the connection comes from `source`. */
function forgedHeader(source: string): Buffer {
  const h = Buffer.alloc(28);
  SIGNATURE.copy(h);
  h.writeUInt8(0x21, 12);
  h.writeUInt8(0x11, 13);
  h.writeUInt16BE(12, 14);
  source.split('.').forEach((n, i) => h.writeUInt8(Number(n), 16 + i));
  [127, 0, 0, 1].forEach((n, i) => h.writeUInt8(n, 20 + i));
  h.writeUInt16BE(40_000, 24);
  h.writeUInt16BE(8883, 26);
  return h;
}

/** curl, the third-party client, with the device's key and certificate, from `localAddress`. */
async function curlTime(t: TestContext, port: number, localAddress: string, d: EnrolledDevice): Promise<{ status: number; error?: string }> {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'ca.pem'), d.caPem);
  writeFileSync(join(dir, 'device.key'), d.keyPem);
  writeFileSync(join(dir, 'device.crt'), d.certPem);
  const args = ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--interface', localAddress, '--cacert', join(dir, 'ca.pem'), '--key', join(dir, 'device.key'), '--cert', join(dir, 'device.crt'), `https://127.0.0.1:${port}/v1/time`];
  try {
    const { stdout } = await run('curl', args);
    return { status: Number(stdout) };
  } catch (err) {
    return { status: 0, error: (err as { stderr?: string }).stderr ?? String(err) };
  }
}

describeWith('PROXY protocol v2 on the device listeners, behind HAProxy', ['haproxy'], () => {
  it('MQTT: a device connecting through HAProxy is logged with its own address, and its session works', async (t) => {
    const { s, log, device } = await serverWithDevice(t, '127.0.0.1');
    const lb = await balancer(t, s, s.server.mqttPort, { sendProxyV2: true });
    const client = await mqttSession(t, s, device, { port: lb.port, localAddress: DEVICE_ADDRESS });
    const opened = await log.next((l) => l.msg === 'MQTT session opened' && l.deviceId === device.id);
    assert.equal(opened.remote, DEVICE_ADDRESS);
    // The bytes after the header reached the TLS server and the broker: a QoS 1 publish is acknowledged.
    await client.publishAsync(`devices/${device.id}/events`, '{"id":"e1","type":"boot","ts":1}', { qos: 1 });
    // At least the device's connection (HAProxy's own port probe at start may be another).
    assert.ok((await metric(s, 'bulwark_device_proxy_headers_total', { listener: 'mqtt', command: 'proxy' })) >= 1);
    assert.equal(await metric(s, 'bulwark_device_proxy_refused_total', {}), 0);
    // A device refused after TLS is logged with its own address too.
    client.end(true);
    await closed(client);
    const bad = await connectDevice(s, device, { port: lb.port, localAddress: DEVICE_ADDRESS, clientId: 'someone-else' } as IClientOptions).catch((err: Error) => err);
    assert.ok(bad instanceof Error);
    const refused = await log.next((l) => l.msg === 'MQTT connect refused' && l.reason === 'client_id_mismatch');
    assert.equal(refused.remote, DEVICE_ADDRESS);
  });

  it('MQTT: a PROXY header from an address that is not a listed balancer is not believed, it fails the TLS handshake', async (t) => {
    const { s, log, device } = await serverWithDevice(t, '127.0.0.1');
    const err = await handshakeAfter(s.server.mqttPort, STRANGER, forgedHeader(FORGED), device);
    assert.notEqual(err.message, 'handshake completed');
    const refused = await log.next((l) => l.msg === 'TLS handshake refused');
    assert.equal(refused.remote, STRANGER);
    assert.ok(!JSON.stringify(log.lines).includes(FORGED), 'the forged address is nowhere in the logs');
    assert.equal(await metric(s, 'bulwark_device_proxy_headers_total', {}), 0);
    // The same stranger without a header is an ordinary device connection.
    await mqttSession(t, s, device, { localAddress: STRANGER });
    const opened = await log.next((l) => l.msg === 'MQTT session opened');
    assert.equal(opened.remote, STRANGER);
  });

  it('MQTT: a listed balancer that sends no header is closed and counted', async (t) => {
    const { s, log, device } = await serverWithDevice(t, '127.0.0.0/30');
    const err = await connectDevice(s, device).catch((e: Error) => e);
    assert.ok(err instanceof Error, 'the connection is refused');
    const line = await log.next((l) => l.listener === 'mqtt' && l.reason === 'bad_signature');
    assert.equal(line.balancer, '127.0.0.1');
    assert.equal(await metric(s, 'bulwark_device_proxy_refused_total', { listener: 'mqtt', reason: 'bad_signature' }), 1);
    assert.equal(log.lines.filter((l) => l.msg === 'MQTT session opened').length, 0);
  });

  it("MQTT, setting off: the listener is unchanged (HAProxy's address is the one seen) and a header is never read", async (t) => {
    const { s, log, device } = await serverWithDevice(t);
    assert.equal(s.server.metrics.registry.getSingleMetric('bulwark_device_proxy_headers_total'), undefined, 'no PROXY metrics when off');
    const plain = await balancer(t, s, s.server.mqttPort, {});
    await mqttSession(t, s, device, { port: plain.port, localAddress: DEVICE_ADDRESS });
    const opened = await log.next((l) => l.msg === 'MQTT session opened');
    assert.equal(opened.remote, '127.0.0.1');
    // A balancer that sends headers to a node that does not expect them gets failed handshakes.
    const proxying = await balancer(t, s, s.server.mqttPort, { sendProxyV2: true });
    const err = await connectDevice(s, device, { port: proxying.port, localAddress: DEVICE_ADDRESS } as IClientOptions).catch((e: Error) => e);
    assert.ok(err instanceof Error);
    await log.next((l) => l.msg === 'TLS handshake refused');
    assert.ok((await metric(s, 'bulwark_mqtt_tls_refused_total', {})) >= 1);
    assert.equal(log.lines.filter((l) => l.remote === DEVICE_ADDRESS).length, 0, 'the address in the header is not believed');
  });

  it('device HTTPS: curl through HAProxy is logged with its own address; a listed balancer without a header is closed', async (t) => {
    const { s, log, device } = await serverWithDevice(t, '127.0.0.1, ::1');
    const lb = await balancer(t, s, s.server.deviceHttpPort, { sendProxyV2: true });
    assert.deepEqual(await curlTime(t, lb.port, DEVICE_ADDRESS, device), { status: 200 });
    const opened = await log.next((l) => l.msg === 'device HTTPS connection opened');
    assert.deepEqual([opened.deviceId, opened.remote], [device.id, DEVICE_ADDRESS]);
    assert.ok((await metric(s, 'bulwark_device_proxy_headers_total', { listener: 'https', command: 'proxy' })) >= 1);

    const direct = await curlTime(t, s.server.deviceHttpPort, '127.0.0.1', device);
    assert.equal(direct.status, 0, 'no answer without a header from a listed balancer');
    await log.next((l) => l.listener === 'https' && l.reason === 'bad_signature');
    assert.equal(await metric(s, 'bulwark_device_proxy_refused_total', { listener: 'https', reason: 'bad_signature' }), 1);

    // (HAProxy's port probe at start left a handshake refused from 127.0.0.1 before this.)
    const mark = log.lines.length;
    const forged = await handshakeAfter(s.server.deviceHttpPort, STRANGER, forgedHeader(FORGED), device);
    assert.notEqual(forged.message, 'handshake completed');
    const refused = await log.next((l) => l.msg === 'device HTTPS handshake refused', mark);
    assert.equal(refused.remote, STRANGER);
    assert.ok(!JSON.stringify(log.lines).includes(FORGED));
  });
});
