import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { closed, connect, connectDevice, enrollDevice, tlsOptions } from '../testing/devices.js';
import { startTestServer, tempDir } from '../testing/harness.js';
import { manufacturerCa as manufacturer } from '../testing/manufacturer-ca.js';

describe('manufacturer CAs and just-in-time provisioning', () => {
  it('provisions an allowed device on first connect, refuses others, and stops trusting a disabled CA at once', async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    const m = manufacturer(tempDir(t));
    const noCrl = await s.api('POST', '/api/v1/pki/manufacturer-cas', { token: admin, body: { name: 'Acme', certificate: m.certPem, crl: 'x'.repeat(80), provisioning: { idPattern: 'acme-[0-9]+' } } });
    assert.equal(noCrl.status, 400, noCrl.text);
    const registered = await s.api('POST', '/api/v1/pki/manufacturer-cas', {
      token: admin,
      body: { name: 'Acme', certificate: m.certPem, crl: m.crlPem, provisioning: { idPattern: 'acme-[0-9]+', allowList: ['special-1'], model: 'acme-thermo', tags: ['factory=acme'] } },
    });
    assert.equal(registered.status, 201, registered.text);
    const caPem = (await s.api('GET', '/api/v1/pki/ca.pem')).text;

    const allowed = m.device('acme-42');
    const client = await connect(tlsOptions(s, { ...allowed, caPem }, 'acme-42'));
    t.after(() => client.end(true));
    const device = await s.api('GET', '/api/v1/devices/acme-42', { token: admin });
    assert.equal(device.body.state, 'active');
    assert.equal(device.body.model, 'acme-thermo');
    assert.deepEqual(device.body.tags, ['factory=acme']);
    const certs = await s.api('GET', '/api/v1/devices/acme-42/certificates', { token: admin });
    assert.equal(certs.body[0]?.caId, registered.body.id);
    const audit = await s.api('GET', '/api/v1/audit?action=device.provision-jit', { token: admin });
    assert.equal(audit.body[0]?.target, 'acme-42');

    const special = m.device('special-1');
    const c2 = await connect(tlsOptions(s, { ...special, caPem }, 'special-1'));
    await c2.endAsync();

    const stranger = m.device('rogue-1');
    await assert.rejects(connect(tlsOptions(s, { ...stranger, caPem }, 'rogue-1')), /Not authorized/i);
    assert.equal((await s.api('GET', '/api/v1/devices/rogue-1', { token: admin })).status, 404, 'a refused device is not registered');

    const gone = closed(client);
    const disabled = await s.api('POST', `/api/v1/pki/manufacturer-cas/${registered.body.id}/disable`, { token: admin });
    assert.equal(disabled.status, 200);
    await gone;
    await assert.rejects(connect(tlsOptions(s, { ...allowed, caPem }, 'acme-42')), 'the handshake fails once the CA is disabled');
    assert.match((await s.api('GET', '/metrics')).text, /bulwark_mqtt_tls_refused_total\{reason="unknown_ca"\} 1/);
  });

  it('never lets a manufacturer certificate take over a device enrolled with the platform CA', async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    const real = await enrollDevice(s, admin, 'acme-7');
    const m = manufacturer(tempDir(t));
    await s.api('POST', '/api/v1/pki/manufacturer-cas', { token: admin, body: { name: 'Acme', certificate: m.certPem, crl: m.crlPem, provisioning: { idPattern: 'acme-[0-9]+', allowList: ['acme-7'] } } });
    const victim = await connectDevice(s, real);
    t.after(() => victim.end(true));
    const caPem = (await s.api('GET', '/api/v1/pki/ca.pem')).text;
    await assert.rejects(connect(tlsOptions(s, { ...m.device('acme-7'), caPem }, 'acme-7')), /Not authorized/i);
    assert.equal(victim.connected, true, 'the real device keeps its session');
    const certs = await s.api('GET', '/api/v1/devices/acme-7/certificates', { token: admin });
    assert.deepEqual(
      certs.body.map((c: { caId: string }) => c.caId),
      ['issuing'],
    );
  });

  it("ends the session of a device the manufacturer's new CRL lists", async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    const m = manufacturer(tempDir(t));
    const ca = await s.api('POST', '/api/v1/pki/manufacturer-cas', { token: admin, body: { name: 'Acme', certificate: m.certPem, crl: m.crlPem, provisioning: { idPattern: 'acme-[0-9]+' } } });
    const caPem = (await s.api('GET', '/api/v1/pki/ca.pem')).text;
    const creds = { ...m.device('acme-3'), caPem };
    const client = await connect(tlsOptions(s, creds, 'acme-3'));
    t.after(() => client.end(true));
    const gone = closed(client);
    const updated = await s.api('PUT', `/api/v1/pki/manufacturer-cas/${ca.body.id}/crl`, { token: admin, body: { crl: m.revoke('acme-3') } });
    assert.equal(updated.status, 200, updated.text);
    await gone;
    await assert.rejects(connect(tlsOptions(s, creds, 'acme-3')));
    const certs = await s.api('GET', '/api/v1/devices/acme-3/certificates', { token: admin });
    assert.equal(certs.body[0]?.revocationReason, 'revoked by manufacturer CRL');
  });

  it('revokes a just-in-time device like any other', async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    const m = manufacturer(tempDir(t));
    await s.api('POST', '/api/v1/pki/manufacturer-cas', { token: admin, body: { name: 'Acme', certificate: m.certPem, crl: m.crlPem, provisioning: { allowList: ['acme-1'] } } });
    const caPem = (await s.api('GET', '/api/v1/pki/ca.pem')).text;
    const creds = { ...m.device('acme-1'), caPem };
    const client = await connect(tlsOptions(s, creds, 'acme-1'));
    t.after(() => client.end(true));
    const gone = closed(client);
    const revoked = await s.api('POST', '/api/v1/devices/acme-1/revoke', { token: admin });
    assert.equal(revoked.body.revoked, 1, revoked.text);
    await gone;
    await assert.rejects(connect(tlsOptions(s, creds, 'acme-1')), /Not authorized/i);
  });
});
