import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, it } from 'node:test';
import { x509 } from '../identity/x509.js';
import { twoClusterNodes, metricValue } from '../testing/cluster-nodes.js';
import { nextMessage } from '../testing/device-messages.js';
import { closed, connect, connectDevice, enrollDevice, makeDeviceKeys, tlsOptions } from '../testing/devices.js';
import { firmwareKit, uploadFirmware } from '../testing/firmware.js';
import { type TestServer, tempDir } from '../testing/harness.js';
import { manufacturerCa } from '../testing/manufacturer-ca.js';
import { sseReader } from '../testing/telemetry.js';
import { type RunningEngine, describeWith, startNats } from '../testing/services.js';
import { eventually } from '../testing/eventually.js';

/**
 * Everything that reaches a device works through the node that does not hold its session:
 * here the device is on node A and the operator talks to node B (commands, twin, kicks and
 * takeover are in cluster.test.ts).
 */
describeWith('cluster mode: device operations through the other node', ['nats-server'], () => {
  let nats: RunningEngine;
  before(async () => {
    nats = await startNats();
  });
  after(() => nats.stop());

  it('rotates a certificate through B: the device moves to its new certificate, and A refuses the old one at the handshake with the CRL B signed', async (t) => {
    const nodes = await twoClusterNodes(t, nats.url);
    if (!nodes) return;
    const { a, b, admin } = nodes;
    const device = await enrollDevice(a, admin, 'gw-c1');
    const onA = await connectDevice(a, device);
    t.after(() => onA.end(true));

    const keys = await makeDeviceKeys('gw-c1');
    const issued = await b.api('POST', '/api/v1/devices/gw-c1/certificates', { token: admin, body: { csr: keys.csrPem } });
    assert.equal(issued.status, 201, issued.text);
    const rotated = { ...device, keyPem: keys.keyPem, certPem: issued.body.certificate as string };
    const aClosed = closed(onA);
    const onB = await connect(tlsOptions(b, rotated, 'gw-c1'));
    t.after(() => onB.end(true));
    await aClosed;

    // The first use of the new certificate revoked the old one (on B); A serves and enforces B's list.
    const listed = async (s: TestServer) => new x509.X509Crl((await s.api('GET', '/api/v1/pki/crl.pem')).text).entries.map((e) => e.serialNumber.toLowerCase().replace(/^0+/, ''));
    const oldSerial = device.serial.toLowerCase().replace(/^0+/, '');
    await eventually(
      () => listed(a),
      (serials) => serials.includes(oldSerial),
    );
    assert.deepEqual(await listed(a), await listed(b), 'one CRL for the cluster');
    const before = await metricValue(a, 'bulwark_mqtt_tls_refused_total{reason="revoked"}');
    await assert.rejects(connectDevice(a, device), 'the old certificate is refused on A');
    assert.equal(await metricValue(a, 'bulwark_mqtt_tls_refused_total{reason="revoked"}'), before + 1, "refused by A's TLS trust store, before MQTT");
    const back = await connect(tlsOptions(a, rotated, 'gw-c1'));
    back.end(true);
  });

  it('trusts a manufacturer CA registered through B on A at once, and ends and refuses its devices on A when it is disabled through B', async (t) => {
    const nodes = await twoClusterNodes(t, nats.url);
    if (!nodes) return;
    const { a, b, admin } = nodes;
    const m = manufacturerCa(tempDir(t));
    const registered = await b.api('POST', '/api/v1/pki/manufacturer-cas', { token: admin, body: { name: 'Acme', certificate: m.certPem, crl: m.crlPem, provisioning: { idPattern: 'acme-[0-9]+' } } });
    assert.equal(registered.status, 201, registered.text);
    const caPem = (await a.api('GET', '/api/v1/pki/ca.pem')).text;
    const acme = { ...m.device('acme-7'), caPem };
    // B announced the change; A reloads its trust store from PostgreSQL when it hears it.
    const client = await eventually(
      () => connect(tlsOptions(a, acme, 'acme-7')).catch(() => undefined),
      (c) => c !== undefined,
    );
    t.after(() => client?.end(true));
    assert.equal((await b.api('GET', '/api/v1/devices/acme-7', { token: admin })).body.state, 'active', 'provisioned just in time on A');

    const gone = closed(client!);
    const disabled = await b.api('POST', `/api/v1/pki/manufacturer-cas/${registered.body.id as string}/disable`, { token: admin, body: {} });
    assert.equal(disabled.status, 200, disabled.text);
    await gone;
    await assert.rejects(connect(tlsOptions(a, acme, 'acme-7')), 'A no longer trusts the CA');
  });

  it("streams a device's logs through B while the device sends them to A, and stops the stream through B", async (t) => {
    const nodes = await twoClusterNodes(t, nats.url);
    if (!nodes) return;
    const { a, b, admin } = nodes;
    const device = await enrollDevice(a, admin, 'gw-g1');
    const client = await connectDevice(a, device);
    t.after(() => client.end(true));
    await client.subscribeAsync('devices/gw-g1/commands/+', { qos: 1 });

    const abort = new AbortController();
    t.after(() => abort.abort());
    const live = await fetch(`${b.url}/api/v1/devices/gw-g1/logs/live`, { headers: { authorization: `Bearer ${admin}` }, signal: abort.signal });
    assert.equal(live.status, 200);
    const next = sseReader(live);
    assert.equal((await next()).event, 'ready');

    const asked = nextMessage(client, 'devices/gw-g1/commands/logs.stream');
    const opened = await b.api('POST', '/api/v1/devices/gw-g1/logs/stream', { token: admin, body: { level: 'info', durationS: 60 } });
    assert.equal(opened.status, 201, opened.text);
    assert.equal(opened.body.command.status, 'sent', 'B delivered the command through A');
    assert.deepEqual((await asked).params, { level: 'info', durationS: 60, sample: 1 });
    await client.publishAsync(
      'devices/gw-g1/logs',
      JSON.stringify({
        entries: [
          { ts: Date.now(), level: 'warn', msg: 'disk almost full' },
          { ts: Date.now(), level: 'info', msg: 'fan at 80 %' },
        ],
      }),
      { qos: 1 },
    );

    const got = [await next(), await next()];
    assert.deepEqual(
      got.map((e) => [e.event, e.data.seq, e.data.msg]),
      [
        ['log', 1, 'disk almost full'],
        ['log', 2, 'fan at 80 %'],
      ],
    );
    const read = await b.api('GET', '/api/v1/devices/gw-g1/logs?level=warn', { token: admin });
    assert.equal(read.status, 200, read.text);
    assert.deepEqual(
      read.body.entries.map((e: { seq: number; msg: string }) => [e.seq, e.msg]),
      [[1, 'disk almost full']],
    );
    assert.equal(read.body.stream.streaming, true);
    assert.equal(read.body.stream.received, 2);

    const stopped = nextMessage(client, 'devices/gw-g1/commands/logs.stop');
    const stop = await b.api('POST', '/api/v1/devices/gw-g1/commands/logs.stop', { token: admin, body: { ifOffline: 'refuse' } });
    assert.equal(stop.status, 201, stop.text);
    assert.equal((await stopped).id, stop.body.id);
    // The window closes on A too (after a grace period for batches on their way), well before the 60 s asked for.
    const onA = await a.api('GET', '/api/v1/devices/gw-g1/logs', { token: admin });
    assert.ok(onA.body.stream.until <= Date.now() + 10_000, `A's window ends at ${onA.body.stream.until}`);
    assert.deepEqual(
      onA.body.entries.map((e: { seq: number }) => e.seq),
      [1, 2],
      'A holds the same numbered entries',
    );
  });

  it('sends an OTA job and its cancel through B to a device connected to A', async (t) => {
    const kit = firmwareKit(tempDir(t));
    const nodes = await twoClusterNodes(t, nats.url, { ota: { rootKeysFile: kit.rootFile } });
    if (!nodes) return;
    const { a, b, admin } = nodes;
    const image = randomBytes(4096);
    const fw = await uploadFirmware(b, admin, kit.release(image), image);
    assert.equal(fw.status, 200, fw.text);
    const device = await enrollDevice(a, admin, 'gw-o1', { model: 'gw-1', hardwareRevision: 'C', firmwareVersion: '1.0.0' });
    const client = await connectDevice(a, device);
    t.after(() => client.end(true));
    await client.subscribeAsync('devices/gw-o1/ota/job', { qos: 1 });

    const job = nextMessage(client, 'devices/gw-o1/ota/job');
    const created = await b.api('POST', '/api/v1/rollouts', { token: admin, body: { name: 'gw 2.0.0', artifactId: fw.body.id, target: { deviceIds: ['gw-o1'] }, strategy: { waves: [{ percent: 100 }] }, gates: { minDevices: 1, onFailure: 'pause' } } });
    assert.equal(created.status, 201, created.text);
    const { jobId } = await job;
    assert.ok(jobId);

    const cancel = nextMessage(client, 'devices/gw-o1/ota/job');
    const aborted = await b.api('POST', `/api/v1/rollouts/${created.body.id as string}/abort`, { token: admin, body: { reason: 'bad build' } });
    assert.equal(aborted.status, 200, aborted.text);
    assert.deepEqual(await cancel, { jobId, cancel: true, reason: 'rollout aborted: bad build' });
  });
});
