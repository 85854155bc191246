import assert from 'node:assert/strict';
import { join } from 'node:path';
import { it } from 'node:test';
import { type CliResult, parseJson, runCli, tempDir } from './support/cli.js';
import { startServer } from './support/server.js';

const ok = (r: CliResult, what: string) => assert.equal(r.code, 0, `${what} failed:\n${r.stdout}\n${r.stderr}`);

/**
 * Pseudonyms from the operator's side: `bulwark start` with logs pseudonymised writes no device
 * id to standard output, and `bulwark privacy pseudonym | resolve` map between the id and what
 * the logs show.
 */
it("bulwark privacy pseudonym and resolve; the server's own log lines name the device only by its pseudonym", { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const env = { BULWARK_CLI_CONFIG: join(dir, 'cli', 'credentials.json'), BULWARK_PRIVACY_PSEUDONYMISE: 'logs' };
  const server = await startServer(t, join(dir, 'data'), { env, args: ['--log-level', 'info'] });
  ok(await runCli(t, ['login', '--url', server.url, '--key', server.adminKey ?? ''], { env }), 'login');
  ok(await runCli(t, ['devices', 'create', 'cli-dev-42'], { env }), 'devices create');
  const { pseudonym } = parseJson<{ pseudonym: string }>(await runCli(t, ['privacy', 'pseudonym', 'cli-dev-42', '--json'], { env }));
  assert.match(pseudonym, /^p:dev:[0-9a-f]{32}$/);
  const resolved = await runCli(t, ['privacy', 'resolve', pseudonym], { env });
  ok(resolved, 'privacy resolve');
  assert.match(resolved.stdout, /value\s+cli-dev-42/);

  ok(await runCli(t, ['devices', 'show', 'cli-dev-42'], { env }), 'devices show');
  await server.process.waitFor(new RegExp(`"url":"/api/v1/devices/${pseudonym}"`));
  assert.equal(server.process.stdout.includes('cli-dev-42'), false, 'no log line names the device');
});
