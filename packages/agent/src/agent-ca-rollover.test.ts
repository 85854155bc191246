import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import type { Agent } from './agent.js';
import { identityFiles } from './identity.js';
import { FaultProxy } from './testing/proxy.js';
import { agentConfig, startAgent, startPlatform, until } from './testing/platform.js';

/** Agents connected through the rollover: 20 in `npm test`, 100 in `npm run test:long`. */
const AGENTS = Number(process.env.BULWARK_TEST_ROLLOVER_AGENTS ?? 20);
/** Of them, the ones behind a proxy whose cut forces a reconnect with the old certificate. */
const CUT = Math.min(5, AGENTS);

interface CaView {
  id: string;
  name: string;
  state: string;
  liveCertificates: number;
  certificate: string;
}

/**
 * The fleet side of an issuing-CA rollover, with real agents on mutual TLS: nobody is
 * disconnected, a new enrolment gets the new CA, an old agent reconnects with its old
 * certificate and its old trust store, and after a renewal every agent holds a certificate
 * from the new CA (as OpenSSL verifies), so the previous CA drains and is retired.
 */
it(`${AGENTS} agents ride an issuing-CA rollover: none disconnected, new enrolments and renewals get the new CA, old certificates work until renewed`, async (t) => {
  const p = await startPlatform(t, { commands: { perPrincipalPerMinute: 100_000 } });
  const api = (method: string, path: string, body?: unknown) => p.s.api(method, path, { token: p.admin, ...(body !== undefined ? { body } : {}) });
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-rollover-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const proxy = new FaultProxy(p.mqttPort);
  t.after(() => proxy.close());
  await proxy.start();

  const agents: Agent[] = [];
  const dirs: string[] = [];
  for (let i = 0; i < AGENTS; i += 20) {
    agents.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(20, AGENTS - i) }, async (_, k) => {
          const n = i + k;
          const config = await agentConfig(t, p, `ro-${n}`, { health: { intervalMs: 600_000 } }, n < CUT ? proxy.port : p.mqttPort);
          dirs[n] = config.dataDir;
          return startAgent(config);
        }),
      )),
    );
  }
  await until('every agent online', () => agents.every((a) => a.status().state === 'online'), 120_000);
  const certOf = (n: number) => readFileSync(identityFiles(dirs[n]!).cert, 'utf8');
  const oldSerials = agents.map((a) => a.status().certificate.serial);
  const notOnline: string[] = [];
  agents.forEach((a, n) =>
    a.on('state', (s) => {
      if (s !== 'online') notOnline.push(`ro-${n}: ${s}`);
    }),
  );

  const rolled = await api('POST', '/api/v1/pki/issuing-ca/rollover');
  assert.equal(rolled.status, 201, rolled.text);
  const newCa = rolled.body.active as CaView;
  const oldCa = rolled.body.previous[0] as CaView;
  assert.equal(oldCa.liveCertificates, AGENTS);

  // None disconnected: every session still carries readings, none was made again.
  await Promise.all(agents.map((a, n) => a.send('env-sensor@2', { n })));
  await until('every reading acknowledged', () => agents.every((a) => a.status().queue.depth === 0), 60_000);
  assert.deepEqual(notOnline, [], 'no agent left the online state');
  assert.deepEqual(
    agents.filter((a) => a.status().reconnects > 0).map((a) => a.status().deviceId),
    [],
  );
  assert.equal(p.s.server.mqtt?.sessionCount, AGENTS, 'the gateway holds every session it held');

  // Evidence files: the root, and trust stores with only one of the two issuing CAs.
  const chain = (await p.s.api('GET', '/api/v1/pki/ca.pem')).text;
  const rootPem = `${chain.split('-----END CERTIFICATE-----')[0]}-----END CERTIFICATE-----\n`;
  writeFileSync(join(dir, 'only-new.pem'), rootPem + newCa.certificate);
  writeFileSync(join(dir, 'only-old.pem'), rootPem + oldCa.certificate);
  const verify = (caFile: string, files: readonly string[]) => {
    const r = spawnSync('openssl', ['verify', '-CAfile', caFile, ...files], { cwd: dir, encoding: 'utf8' });
    return { ok: r.status === 0 && files.every((f) => r.stdout.includes(`${f}: OK`)), out: `${r.stdout}${r.stderr}` };
  };

  // A new enrolment gets the new CA.
  const newcomerConfig = await agentConfig(t, p, 'ro-newcomer');
  const newcomer = await startAgent(newcomerConfig);
  await until('the newcomer online', () => newcomer.status().state === 'online', 60_000);
  const newcomerCert = readFileSync(identityFiles(newcomerConfig.dataDir).cert, 'utf8');
  assert.equal(new X509Certificate(newcomerCert).issuer, new X509Certificate(newCa.certificate).subject);
  writeFileSync(join(dir, 'newcomer.crt'), newcomerCert);
  assert.ok(verify('only-new.pem', ['newcomer.crt']).ok, 'OpenSSL chains the new enrolment through the new CA');
  assert.ok(!verify('only-old.pem', ['newcomer.crt']).ok);

  // A forced reconnect: the cut agents come back with the certificate and ca.crt they had.
  const back = new Set<number>();
  agents.slice(0, CUT).forEach((a, n) => a.once('connected', () => back.add(n)));
  proxy.cut();
  // Bounded, naming who is missing: a stall fails the test instead of hanging it.
  await until('the cut agents back', () => back.size === CUT, 120_000).catch((err: Error) => {
    throw new Error(`${err.message}; not back: ${agents.flatMap((a, n) => (n < CUT && !back.has(n) ? [`ro-${n} (${a.status().state})`] : [])).join(', ')}`);
  });
  for (let n = 0; n < CUT; n += 1) {
    assert.equal(agents[n]!.status().certificate.serial, oldSerials[n], `ro-${n} reconnected with its old certificate`);
    assert.equal(new X509Certificate(certOf(n)).issuer, new X509Certificate(oldCa.certificate).subject);
    assert.equal(readFileSync(identityFiles(dirs[n]!).ca, 'utf8').split('BEGIN CERTIFICATE').length - 1, 2, 'its trust store: root and previous CA only');
  }

  // A renewal (built-in command certs.renew) gives every agent a certificate from the new CA.
  const renewed = new Set<number>();
  agents.forEach((a, n) => a.once('renewed', () => renewed.add(n)));
  for (let i = 0; i < AGENTS; i += 20) {
    await Promise.all(
      agents.slice(i, i + 20).map(async (_, k) => {
        const sent = await api('POST', `/api/v1/devices/ro-${i + k}/commands/certs.renew`, { params: {} });
        assert.equal(sent.status, 201, sent.text);
      }),
    );
  }
  await until('every agent renewed', () => renewed.size === AGENTS, 120_000).catch((err: Error) => {
    throw new Error(`${err.message}; not renewed: ${agents.flatMap((a, n) => (renewed.has(n) ? [] : [`ro-${n} (${a.status().state})`])).join(', ')}`);
  });
  await until('every agent online with its new certificate', () => agents.every((a) => a.status().state === 'online'), 120_000);
  // From here to the retire's check, who leaves the online state and why (a refusal names its reason): a failure says whether the retire ended sessions or the machine dropped them.
  const left: string[] = [];
  const watch = agents.map((a, n) => {
    const onState = (s: string) => {
      if (s !== 'online') left.push(`ro-${n}: ${s}${s === 'refused' ? ` (${JSON.stringify(a.status().lastRefusal ?? null)})` : ''}`);
    };
    a.on('state', onState);
    return () => a.off('state', onState);
  });
  const files = agents.map((_, n) => {
    writeFileSync(join(dir, `ro-${n}.crt`), certOf(n));
    return `ro-${n}.crt`;
  });
  const renewedCheck = verify('only-new.pem', files);
  assert.ok(renewedCheck.ok, renewedCheck.out);
  agents.forEach((a, n) => assert.notEqual(a.status().certificate.serial, oldSerials[n]));

  // Every old certificate retired once its successor was used: the previous CA drains and goes.
  await until('the previous CA has no live certificate', async () => ((await api('GET', '/api/v1/pki/issuing-cas')).body as CaView[]).find((c) => c.id === oldCa.id)?.liveCertificates === 0);
  assert.deepEqual(await p.s.server.identity.issuingCas.retireDrained(), [oldCa.id]);
  const after = (await api('GET', '/api/v1/pki/issuing-cas')).body as CaView[];
  assert.deepEqual(
    after.map((c) => [c.id, c.state, c.liveCertificates]),
    [
      [newCa.id, 'active', AGENTS + 1],
      [oldCa.id, 'retired', 0],
    ],
  );
  const sessions = p.s.server.mqtt?.sessionCount;
  for (const stop of watch) stop();
  assert.equal(sessions, AGENTS + 1, `retiring a drained CA ends no session; left the online state since every agent was online: ${left.join(', ') || 'none'}`);
  console.log(`issuing-CA rollover with ${AGENTS} agents: none disconnected; ${CUT} reconnected with their old certificates; ${AGENTS} renewed from ${newCa.id}; ${oldCa.id} retired`);
});
