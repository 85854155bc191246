import assert from 'node:assert/strict';
import { join } from 'node:path';
import { it } from 'node:test';
import { type CliResult, runCli, tempDir } from './support/cli.js';
import { startServer } from './support/server.js';

const ok = (r: CliResult, what: string) => assert.equal(r.code, 0, `${what} failed:\n${r.stdout}\n${r.stderr}`);

/**
 * `bulwark start --http-tls` from the operator's side: the banner names the CA file to trust,
 * and the real `bulwark` command reaches the API over HTTPS once told to trust it (and says
 * why it cannot before).
 */
it('serves the API over HTTPS and the CLI works with the CA file the banner names', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const dataDir = join(dir, 'data');
  const env = { BULWARK_CLI_CONFIG: join(dir, 'cli', 'credentials.json') };
  const server = await startServer(t, dataDir, { env, args: ['--http-tls'] });
  const caFile = join(dataDir, 'ca.pem');
  assert.match(server.url, /^https:\/\//);
  assert.ok(server.banner.includes(`clients trust ${caFile}`), server.banner);
  assert.ok(server.banner.includes(`curl --cacert ${caFile} ${server.url}/healthz`), server.banner);
  assert.doesNotMatch(server.banner, /without TLS/);
  const key = server.adminKey;
  assert.ok(key);

  const untrusted = await runCli(t, ['login', '--url', server.url, '--key', key], { env });
  assert.equal(untrusted.code, 1, untrusted.stdout + untrusted.stderr);
  assert.match(untrusted.stderr, /BULWARK_CLI_UNREACHABLE: .*its TLS certificate is not trusted here .*NODE_EXTRA_CA_CERTS/);

  const trusted = { ...env, NODE_EXTRA_CA_CERTS: caFile };
  ok(await runCli(t, ['login', '--url', server.url, '--key', key], { env: trusted }), 'login over HTTPS');
  const who = await runCli(t, ['whoami'], { env: trusted });
  ok(who, 'whoami');
  assert.match(who.stdout, /admin/);
});
