import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { type EnrolledDevice, connectDevice, enrollDevice, makeDeviceKeys } from '../../testing/devices.js';
import { type TestServer, startTestServer, tempDir } from '../../testing/harness.js';

const run = promisify(execFile);
const schema = { $id: 'env-sensor@1', type: 'object', required: ['temp_c'], properties: { temp_c: { type: 'number', 'x-unit': 'degC' } } };

/** curl, the third-party client, with the device's own key and certificate. */
async function curl(s: TestServer, dir: string, d: Pick<EnrolledDevice, 'keyPem' | 'certPem' | 'caPem'> | undefined, method: string, path: string, body?: string, type = 'application/json') {
  const args = ['-sS', '-o', '-', '-w', '\n%{http_code}', '--cacert', join(dir, 'ca.pem'), '-X', method, `https://127.0.0.1:${s.server.deviceHttpPort}${path}`];
  writeFileSync(join(dir, 'ca.pem'), (d ?? { caPem: (await s.api('GET', '/api/v1/pki/ca.pem')).text }).caPem);
  if (d) {
    writeFileSync(join(dir, 'device.key'), d.keyPem);
    writeFileSync(join(dir, 'device.crt'), d.certPem);
    args.push('--key', join(dir, 'device.key'), '--cert', join(dir, 'device.crt'));
  }
  if (body !== undefined) {
    writeFileSync(join(dir, 'body'), body);
    args.push('-H', `content-type: ${type}`, '--data-binary', `@${join(dir, 'body')}`);
  }
  try {
    const { stdout } = await run('curl', args);
    const lines = stdout.trimEnd().split('\n');
    const status = Number(lines.pop());
    return { status, body: lines.join('\n') ? JSON.parse(lines.join('\n')) : undefined };
  } catch (err) {
    return { status: 0, body: undefined, error: (err as { stderr?: string }).stderr ?? String(err) };
  }
}

const envelope = (id: string, data: Record<string, unknown>) => JSON.stringify({ id, seq: 1, ts: Date.now(), schema: 'env-sensor@1', data });

describe('device ingest over HTTPS with mutual TLS', () => {
  it('stores telemetry sent with curl, once across transports, and answers only after it is durable', async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    await s.api('POST', '/api/v1/schemas', { token: admin, body: schema });
    const d = await enrollDevice(s, admin, 'edge-1');
    const dir = tempDir(t);
    const first = await curl(s, dir, d, 'POST', '/v1/telemetry', envelope('h-1', { temp_c: 20 }));
    assert.deepEqual(first, { status: 200, body: { status: 'stored' } });
    const readings = await s.api('GET', '/api/v1/devices/edge-1/telemetry', { token: admin });
    assert.deepEqual(
      readings.body.map((r: { msgId: string }) => r.msgId),
      ['h-1'],
    );
    assert.deepEqual(await curl(s, dir, d, 'POST', '/v1/telemetry', envelope('h-1', { temp_c: 20 })), { status: 200, body: { status: 'duplicate' } }, 'an HTTP retry');
    const mqtt = await connectDevice(s, d);
    t.after(() => mqtt.end(true));
    await mqtt.publishAsync('devices/edge-1/telemetry', envelope('h-1', { temp_c: 20 }), { qos: 1 });
    assert.equal((await s.api('GET', '/api/v1/devices/edge-1/telemetry', { token: admin })).body.length, 1, 'the same id over MQTT is the same message');
    assert.match((await s.api('GET', '/metrics')).text, /bulwark_ingest_messages_total\{transport="http",outcome="stored"\} 1/);

    const bad = await curl(s, dir, d, 'POST', '/v1/telemetry', envelope('h-2', { temp_c: 'warm' }));
    assert.equal(bad.status, 422);
    assert.equal(bad.body.reason, 'schema_violation');
    assert.equal((await curl(s, dir, d, 'POST', '/v1/telemetry', 'temp_c=1', 'application/x-www-form-urlencoded')).status, 415);
    const big = await curl(s, dir, d, 'POST', '/v1/telemetry', 'x'.repeat(300_000));
    assert.equal(big.status, 413, JSON.stringify(big));
    assert.equal((await curl(s, dir, d, 'GET', '/v1/nothing')).status, 404);
    const time = await curl(s, dir, d, 'GET', '/v1/time?t0=5');
    assert.equal(time.body.t0, 5);
    assert.ok(time.body.t1 <= time.body.t2);
  });

  it('refuses clients without a certificate, revoked devices, and rotates a certificate over HTTPS', async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    const d = await enrollDevice(s, admin, 'edge-2');
    const dir = tempDir(t);
    const anonymous = await curl(s, dir, undefined, 'GET', '/v1/time');
    assert.equal(anonymous.status, 0, 'no certificate: the handshake fails');
    const next = await makeDeviceKeys('edge-2');
    const rotated = await curl(s, dir, d, 'POST', '/v1/certs/rotate', JSON.stringify({ csr: next.csrPem }));
    assert.equal(rotated.status, 201);
    const renewed = { ...d, keyPem: next.keyPem, certPem: rotated.body.certificate as string };
    assert.equal((await curl(s, dir, renewed, 'GET', '/v1/time')).status, 200);
    assert.equal((await curl(s, dir, d, 'GET', '/v1/time')).status, 0, 'the old certificate retired when the new one was used');
    await s.api('POST', '/api/v1/devices/edge-2/revoke', { token: admin });
    assert.equal((await curl(s, dir, renewed, 'GET', '/v1/time')).status, 0, 'a revoked certificate fails the handshake');
    assert.match((await s.api('GET', '/metrics')).text, /bulwark_device_https_tls_refused_total\{reason="revoked"\} [1-9]/);
  });
});

describe('one message, every way a device may repeat it', () => {
  it('stores it once whether it is resent with DUP, on a new connection, or over HTTPS', async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    await s.api('POST', '/api/v1/schemas', { token: admin, body: schema });
    const d = await enrollDevice(s, admin, 'rep-1');
    const message = envelope('same-1', { temp_c: 7 });
    const first = await connectDevice(s, d);
    t.after(() => first.end(true));
    await first.publishAsync('devices/rep-1/telemetry', message, { qos: 1 });
    await first.publishAsync('devices/rep-1/telemetry', message, { qos: 1, dup: true });
    await first.endAsync();
    const second = await connectDevice(s, d);
    t.after(() => second.end(true));
    await second.publishAsync('devices/rep-1/telemetry', message, { qos: 1 });
    assert.deepEqual(await curl(s, tempDir(t), d, 'POST', '/v1/telemetry', message), { status: 200, body: { status: 'duplicate' } });
    assert.equal((await s.api('GET', '/api/v1/devices/rep-1/telemetry', { token: admin })).body.length, 1);
    const metrics = (await s.api('GET', '/metrics')).text;
    assert.match(metrics, /bulwark_ingest_messages_total\{transport="mqtt",outcome="stored"\} 1/);
    assert.match(metrics, /bulwark_ingest_messages_total\{transport="mqtt",outcome="duplicate"\} 2/);
    assert.match(metrics, /bulwark_ingest_messages_total\{transport="http",outcome="duplicate"\} 1/);
  });
});
