import assert from 'node:assert/strict';
import { join } from 'node:path';
import { it } from 'node:test';
import { enrollDevice } from '../packages/server/src/testing/devices.js';
import { startTestServer } from '../packages/server/src/testing/harness.js';
import { parseJson, runCli, tempDir } from './support/cli.js';
import { show } from './support/devices.js';

/** Issuing-CA rollover and retirement through the real `bulwark` command, against a real server. */
it('lists, rolls over and retires issuing CAs from the command line', { timeout: 180_000 }, async (t) => {
  const s = await startTestServer(t);
  const env = { BULWARK_URL: s.url, BULWARK_KEY: s.adminKey, BULWARK_CLI_CONFIG: join(tempDir(t), 'credentials.json') };
  const bulwark = (args: readonly string[]) => runCli(t, args, { env });
  await enrollDevice(s, await s.tokenFor(s.adminKey), 'cli-ro-1');

  const table = await bulwark(['certs', 'cas']);
  assert.equal(table.code, 0, show(table));
  assert.match(table.stdout, /issuing\s+│\s+active\s+│\s+1\s+│/, show(table));

  const rolled = await bulwark(['certs', 'ca-rollover']);
  assert.equal(rolled.code, 0, show(rolled));
  assert.match(rolled.stdout, /Issuing CA issuing-\d{8}t\d{6}z is active/);
  assert.match(rolled.stdout, /issuing stays trusted for its 1 certificates that still work/);

  const list = parseJson<{ id: string; state: string; liveCertificates: number; certificate: string }[]>(await bulwark(['certs', 'cas', '--json']));
  assert.deepEqual(
    list.map((c) => [c.state, c.liveCertificates]),
    [
      ['active', 0],
      ['previous', 1],
    ],
  );
  assert.match(list[0]!.certificate, /BEGIN CERTIFICATE/);
  const crl = await bulwark(['pki', 'crl', '--url', s.url]);
  assert.equal(crl.stdout.split('BEGIN X509 CRL').length - 1, 2, 'one CRL per trusted issuing CA');

  const refused = await bulwark(['certs', 'ca-retire', 'issuing']);
  assert.notEqual(refused.code, 0, show(refused));
  assert.match(refused.stderr, /BULWARK_ERR_CONFLICT.*1 device certificates from issuing still work/s);
  const retired = await bulwark(['certs', 'ca-retire', 'issuing', '--force', '--json']);
  assert.equal(retired.code, 0, show(retired));
  assert.equal(parseJson(retired).state, 'retired');
});
