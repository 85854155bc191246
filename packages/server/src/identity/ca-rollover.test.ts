import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { ManualClock } from '@bulwark/core';
import type { MqttClient } from 'mqtt';
import { closed, connect, connectDevice, enrollDevice, makeDeviceKeys, tlsOptions } from '../testing/devices.js';
import { type TestServer, startTestServer, tempDir } from '../testing/harness.js';
import { x509 } from './x509.js';

interface CaView {
  id: string;
  name: string;
  state: string;
  liveCertificates: number;
  certificate: string;
  retiredAt: number | null;
}

/** `openssl verify` with these arguments, run in `dir`: whether it says OK, and what it printed. */
function opensslVerify(dir: string, args: readonly string[]): { ok: boolean; out: string } {
  const r = spawnSync('openssl', ['verify', ...args], { cwd: dir, encoding: 'utf8' });
  return { ok: r.status === 0 && /: OK$/m.test(r.stdout), out: `${r.stdout}${r.stderr}` };
}

const issuerOf = (pem: string) => new x509.X509Certificate(pem).issuer;
const pemCount = (text: string, label: string) => text.split(`-----BEGIN ${label}-----`).length - 1;
const cas = async (s: TestServer, token: string): Promise<CaView[]> => (await s.api('GET', '/api/v1/pki/issuing-cas', { token })).body;
const summary = (list: CaView[]) => list.map((c) => [c.id, c.state, c.liveCertificates]);

async function operatorToken(s: TestServer, admin: string): Promise<string> {
  const user = await s.api('POST', '/api/v1/users', { token: admin, body: { name: 'ops', role: 'operator' } });
  const key = await s.api('POST', '/api/v1/keys', { token: admin, body: { name: 'ops', principalId: user.body.id } });
  return s.tokenFor(key.body.key);
}

describe('issuing-CA rollover', () => {
  it('signs new certificates with the new CA while sessions, certificates and CRLs of the previous one keep working, until it is retired', async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    const dir = tempDir(t);
    const file = (name: string, text: string) => {
      writeFileSync(join(dir, name), text);
      return name;
    };
    const kept = await enrollDevice(s, admin, 'ro-kept');
    const renewed = await enrollDevice(s, admin, 'ro-renewed');
    const revoked = await enrollDevice(s, admin, 'ro-revoked');
    assert.deepEqual(summary(await cas(s, admin)), [['issuing', 'active', 3]]);
    const sessions = new Map<string, MqttClient>();
    let drops = 0;
    for (const d of [kept, renewed]) {
      const c = await connectDevice(s, d);
      c.on('close', () => drops++);
      sessions.set(d.id, c);
      t.after(() => c.end(true));
    }
    const oldCa = (await cas(s, admin))[0]!;

    const forbidden = await s.api('POST', '/api/v1/pki/issuing-ca/rollover', { token: await operatorToken(s, admin) });
    assert.equal(forbidden.status, 403, 'pki:write is an admin scope');
    const rolled = await s.api('POST', '/api/v1/pki/issuing-ca/rollover', { token: admin });
    assert.equal(rolled.status, 201, rolled.text);
    const newCa = rolled.body.active as CaView;
    assert.match(newCa.id, /^issuing-\d{8}t\d{6}z$/);
    assert.notEqual(newCa.name, oldCa.name, 'each issuing CA has a name of its own');
    assert.deepEqual(summary(rolled.body.previous), [['issuing', 'previous', 3]]);
    assert.deepEqual(summary(await cas(s, admin)), [
      [newCa.id, 'active', 0],
      ['issuing', 'previous', 3],
    ]);
    const audit = await s.api('GET', '/api/v1/audit?action=pki.issuing-ca.rollover', { token: admin });
    assert.equal(audit.body[0]?.target, newCa.id);

    // No session was dropped: both devices still publish on the sessions they had.
    for (const c of sessions.values()) assert.equal(c.connected, true, `${String(c.options.clientId)} kept its session`);
    for (const c of sessions.values()) await c.publishAsync(`devices/${String(c.options.clientId)}/events`, '{"id":"e1","type":"boot","ts":1}', { qos: 1 });
    assert.equal(drops, 0);
    assert.equal(s.server.mqtt?.sessionCount, 2);

    // The chain now holds root, new and previous CA; new enrolments get the new CA.
    const chain = (await s.api('GET', '/api/v1/pki/ca.pem')).text;
    assert.equal(pemCount(chain, 'CERTIFICATE'), 3);
    const rootPem = `${chain.split('-----END CERTIFICATE-----')[0]}-----END CERTIFICATE-----\n`;
    const fresh = await enrollDevice(s, admin, 'ro-fresh');
    assert.equal(issuerOf(fresh.certPem), newCa.name);
    assert.equal(fresh.caPem, chain);
    const onlyNew = file('only-new.pem', rootPem + newCa.certificate);
    const onlyOld = file('only-old.pem', rootPem + oldCa.certificate);
    assert.ok(opensslVerify(dir, ['-CAfile', onlyNew, file('fresh.crt', fresh.certPem)]).ok, 'the new certificate chains through the new CA');
    assert.ok(!opensslVerify(dir, ['-CAfile', onlyOld, 'fresh.crt']).ok, 'and not through the previous one');
    file('ca.pem', chain);
    assert.ok(opensslVerify(dir, ['-CAfile', 'ca.pem', file('kept.crt', kept.certPem)]).ok, 'the published chain verifies certificates of both CAs');
    t.after(() => sessions.get('ro-fresh')?.end(true));
    sessions.set('ro-fresh', await connectDevice(s, fresh));

    // A device of the previous CA reconnects with its certificate and its old trust store (root
    // and previous CA), although the gateway's own certificate now comes from the new CA.
    const oldKept = sessions.get('ro-kept')!;
    const gone = closed(oldKept);
    oldKept.end(true);
    await gone;
    const again = await connect(tlsOptions(s, kept, kept.id));
    t.after(() => again.end(true));
    assert.equal((again.stream as TLSSocket).getPeerCertificate().issuer.CN, new x509.X509Certificate(newCa.certificate).subjectName.getField('CN')[0]);
    assert.equal(pemCount(kept.caPem, 'CERTIFICATE'), 2, 'the device trusts only root and previous CA');

    // Each CA signs its own CRL; crl.pem holds both, the active one first.
    assert.equal((await s.api('POST', `/api/v1/devices/${revoked.id}/revoke`, { token: admin, body: { reason: 'test' } })).body.revoked, 1);
    const crls = (await s.api('GET', '/api/v1/pki/crl.pem')).text;
    assert.equal(pemCount(crls, 'X509 CRL'), 2);
    const oldCrl = (await s.api('GET', '/api/v1/pki/issuing-cas/issuing/crl.pem')).text;
    const newCrl = (await s.api('GET', `/api/v1/pki/issuing-cas/${newCa.id}/crl.pem`)).text;
    assert.equal(crls, newCrl + oldCrl);
    const listed = (pem: string) => new x509.X509Crl(pem).entries.map((e) => e.serialNumber.toLowerCase().replace(/^0+/, ''));
    assert.deepEqual(listed(oldCrl), [revoked.serial.replace(/^0+/, '')]);
    assert.deepEqual(listed(newCrl), []);
    const rootCrl = () => s.api('GET', '/api/v1/pki/root-crl.pem').then((r) => file('root-crl.pem', r.text));
    const crlArgs = ['-crl_check_all', '-CAfile', 'ca.pem', '-CRLfile', file('crl.pem', crls), '-CRLfile', await rootCrl()];
    assert.match(opensslVerify(dir, [...crlArgs, file('revoked.crt', revoked.certPem)]).out, /certificate revoked/);
    assert.ok(opensslVerify(dir, [...crlArgs, 'kept.crt']).ok);
    assert.ok(opensslVerify(dir, [...crlArgs, 'fresh.crt']).ok);
    assert.equal((await s.api('GET', '/api/v1/pki/issuing-cas/nope/crl.pem')).status, 404);

    // Retiring: refused for the active CA, and for the previous one while its certificates work.
    const retire = (id: string, body: unknown = {}) => s.api('POST', `/api/v1/pki/issuing-cas/${id}/retire`, { token: admin, body });
    assert.equal((await retire(newCa.id)).status, 409);
    const busy = await retire('issuing');
    assert.equal(busy.status, 409);
    assert.match(busy.body.error.message, /2 device certificates from issuing still work/);

    // A renewal moves a device to the new CA: its old certificate retires when the new one is used.
    const keys = await makeDeviceKeys(renewed.id);
    const reissued = await s.api('POST', `/api/v1/devices/${renewed.id}/certificates`, { token: admin, body: { csr: keys.csrPem } });
    assert.equal(reissued.status, 201, reissued.text);
    assert.equal(issuerOf(reissued.body.certificate), newCa.name);
    const moved = { ...renewed, keyPem: keys.keyPem, certPem: reissued.body.certificate as string, caPem: reissued.body.caChain as string };
    const movedGone = closed(sessions.get(renewed.id)!);
    const onNew = await connect(tlsOptions(s, moved, renewed.id));
    t.after(() => onNew.end(true));
    await movedGone;
    assert.deepEqual(summary(await cas(s, admin)), [
      [newCa.id, 'active', 2],
      ['issuing', 'previous', 1],
    ]);
    assert.deepEqual(await s.server.identity.issuingCas.retireDrained(), [], 'ro-kept still holds a working certificate from it');

    // Forced: ro-kept's session ends, its certificate is refused, the root CRL lists the CA.
    const keptGone = closed(again);
    const forced = await retire('issuing', { force: true });
    assert.equal(forced.status, 200, forced.text);
    assert.deepEqual([forced.body.state, typeof forced.body.retiredAt], ['retired', 'number']);
    await keptGone;
    await assert.rejects(connect(tlsOptions(s, kept, kept.id)), 'a certificate of a retired CA is refused at the handshake');
    assert.equal(onNew.connected, true, 'devices of the active CA are untouched');
    assert.equal(pemCount((await s.api('GET', '/api/v1/pki/ca.pem')).text, 'CERTIFICATE'), 2);
    assert.equal((await s.api('GET', '/api/v1/pki/issuing-cas/issuing/crl.pem')).status, 404);
    const retiredCheck = ['-crl_check_all', '-CAfile', 'only-old.pem', '-CRLfile', file('old-crl.pem', oldCrl), '-CRLfile', await rootCrl(), 'kept.crt'];
    assert.match(opensslVerify(dir, retiredCheck).out, /certificate revoked/, 'the root CRL revokes the retired CA');
    assert.equal((await s.api('GET', '/api/v1/audit?action=pki.issuing-ca.retire', { token: admin })).body[0]?.target, 'issuing');
  });

  it('retires a previous CA at the scheduled check once its last certificate was rotated or has ended', async (t) => {
    const clock = new ManualClock(Date.now());
    const s = await startTestServer(t, { clock, config: { identity: { deviceCertValidityDays: 2 } } });
    const admin = await s.tokenFor(s.adminKey);
    const rotated = await enrollDevice(s, admin, 'dr-rotated');
    await enrollDevice(s, admin, 'dr-ending');
    assert.equal((await s.api('POST', '/api/v1/pki/issuing-ca/rollover', { token: admin })).status, 201);
    const keys = await makeDeviceKeys(rotated.id);
    const reissued = await s.api('POST', `/api/v1/devices/${rotated.id}/certificates`, { token: admin, body: { csr: keys.csrPem } });
    assert.equal(reissued.status, 201, reissued.text);
    assert.deepEqual(summary(await cas(s, admin)).slice(1), [['issuing', 'previous', 2]], 'a superseded certificate works until its successor is used');
    const c = await connect(tlsOptions(s, { ...rotated, keyPem: keys.keyPem, certPem: reissued.body.certificate }, rotated.id));
    await c.endAsync();
    assert.deepEqual(summary(await cas(s, admin)).slice(1), [['issuing', 'previous', 1]]);
    assert.deepEqual(await s.server.identity.issuingCas.retireDrained(), []);

    clock.advance(2 * 86_400_000 + 120_000);
    const later = await s.tokenFor(s.adminKey);
    assert.deepEqual(await s.server.identity.issuingCas.retireDrained(), ['issuing'], "dr-ending's certificate has ended");
    assert.deepEqual(summary(await cas(s, later)).slice(1), [['issuing', 'retired', 0]]);
    const audit = (await s.api('GET', '/api/v1/audit?action=pki.issuing-ca.retire', { token: later })).body;
    assert.deepEqual([audit[0]?.actor, audit[0]?.target], ['system', 'issuing']);
    assert.equal(new x509.X509Crl((await s.api('GET', '/api/v1/pki/root-crl.pem')).text).entries.length, 1);
  });

  it('refuses a rollover past four trusted issuing CAs', async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    for (let i = 0; i < 3; i += 1) assert.equal((await s.api('POST', '/api/v1/pki/issuing-ca/rollover', { token: admin })).status, 201);
    const list = await cas(s, admin);
    assert.equal(new Set(list.map((c) => c.id)).size, 4, 'ids stay unique within one second');
    const fifth = await s.api('POST', '/api/v1/pki/issuing-ca/rollover', { token: admin });
    assert.equal(fifth.status, 409);
    assert.match(fifth.body.error.message, /retire a previous one first/);
    const drained = await s.server.identity.issuingCas.retireDrained();
    assert.equal(drained.length, 3, 'with no certificates, the three previous CAs go at the next check');
    assert.equal((await s.api('POST', '/api/v1/pki/issuing-ca/rollover', { token: admin })).status, 201);
  });
});
