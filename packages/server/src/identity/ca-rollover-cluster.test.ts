import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import type { TLSSocket } from 'node:tls';
import type { MqttClient } from 'mqtt';
import { twoClusterNodes } from '../testing/cluster-nodes.js';
import { closed, connect, connectDevice, enrollDevice, tlsOptions } from '../testing/devices.js';
import { eventually } from '../testing/eventually.js';
import type { TestServer } from '../testing/harness.js';
import { type RunningEngine, describeWith, startNats } from '../testing/services.js';
import { x509 } from './x509.js';

const issuerCn = (c: MqttClient) => (c.stream as TLSSocket).getPeerCertificate().issuer.CN;
const cnOf = (pem: string) => new x509.X509Certificate(pem).subjectName.getField('CN')[0];

describeWith('cluster mode: issuing-CA rollover', ['nats-server'], () => {
  let nats: RunningEngine;
  before(async () => {
    nats = await startNats();
  });
  after(() => nats.stop());

  it("rolls over through B: A keeps its sessions, trusts the new CA at once, serves both CRLs, and ends the old CA's sessions when B retires it", async (t) => {
    const nodes = await twoClusterNodes(t, nats.url);
    if (!nodes) return;
    const { a, b, admin } = nodes;
    const old = await enrollDevice(a, admin, 'cr-old');
    const onA = await connectDevice(a, old);
    t.after(() => onA.end(true));
    let dropped = false;
    onA.on('close', () => {
      dropped = true;
    });

    const rolled = await b.api('POST', '/api/v1/pki/issuing-ca/rollover', { token: admin });
    assert.equal(rolled.status, 201, rolled.text);
    const newCa = rolled.body.active as { id: string; name: string; certificate: string };

    // A heard it: a device enrolled through B with the new CA is admitted by A's TLS trust store.
    const fresh = await enrollDevice(b, admin, 'cr-fresh');
    assert.equal(new x509.X509Certificate(fresh.certPem).issuer, newCa.name);
    const freshOnA = await eventually(
      () => connectDevice(a, fresh).catch(() => undefined),
      (c) => c !== undefined,
    );
    t.after(() => freshOnA?.end(true));
    assert.equal(issuerCn(freshOnA!), cnOf(newCa.certificate), "A's server certificate now comes from the new CA");
    await onA.publishAsync('devices/cr-old/events', '{"id":"e1","type":"boot","ts":1}', { qos: 1 });
    assert.equal(dropped, false, 'the session A held through the rollover is still there');

    // Both nodes agree: the same CAs, the same CRLs (one per trusted issuing CA).
    const view = async (s: TestServer) => ((await s.api('GET', '/api/v1/pki/issuing-cas', { token: admin })).body as { id: string; state: string }[]).map((c) => `${c.id}:${c.state}`);
    assert.deepEqual(await view(a), [`${newCa.id}:active`, 'issuing:previous']);
    assert.deepEqual(await view(a), await view(b));
    const crls = async (s: TestServer) => (await s.api('GET', '/api/v1/pki/crl.pem')).text;
    await eventually(
      () => crls(a),
      (text) => text.split('BEGIN X509 CRL').length - 1 === 2,
    );
    assert.equal(await crls(a), await crls(b));

    // The old device reconnects to A with its old certificate and old trust store.
    const gone = closed(onA);
    onA.end(true);
    await gone;
    const again = await connect(tlsOptions(a, old, old.id));
    t.after(() => again.end(true));

    // Retired through B (forced, it still works): A ends its session and refuses it after.
    const ended = closed(again);
    const retired = await b.api('POST', '/api/v1/pki/issuing-cas/issuing/retire', { token: admin, body: { force: true } });
    assert.equal(retired.status, 200, retired.text);
    await ended;
    await assert.rejects(connect(tlsOptions(a, old, old.id)), 'A no longer trusts the retired CA');
    assert.equal(freshOnA?.connected, true);
  });
});
