import assert from 'node:assert/strict';
import { join } from 'node:path';
import { it } from 'node:test';
import { type CliResult, parseJson, runCli, tempDir } from './support/cli.js';
import { startServer } from './support/server.js';

const ok = (r: CliResult, what: string) => assert.equal(r.code, 0, `${what} failed:\n${r.stdout}\n${r.stderr}`);

/**
 * `bulwark audit` as a CI gate: on a fresh deployment every check passes (exit 0); a service
 * account given an administration scope fails the run (exit 4) with the evidence and what to do,
 * as a table, JSON or Markdown.
 */
it('bulwark audit passes a clean deployment and fails one with a broad service account', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const env = { BULWARK_CLI_CONFIG: join(dir, 'cli', 'credentials.json') };
  const server = await startServer(t, join(dir, 'data'), { env });
  ok(await runCli(t, ['login', '--url', server.url, '--key', server.adminKey ?? ''], { env }), 'login');

  const clean = await runCli(t, ['audit'], { env });
  ok(clean, 'audit of a clean deployment');
  assert.match(clean.stdout, /Security checklist at .*: \d+ pass, 0 warn, 0 fail/);
  assert.match(clean.stdout, /PASS\s+│\s+audit-chain\s+│\s+5\.10/);

  ok(await runCli(t, ['users', 'create', 'deploy-bot', '--service', '--scopes', 'devices:read,users:write'], { env }), 'users create');
  const failing = await runCli(t, ['audit'], { env });
  assert.equal(failing.code, 4, failing.stdout + failing.stderr);
  assert.match(failing.stdout, /FAIL Service accounts hold no platform-administration scope/);
  assert.match(failing.stdout, /service account deploy-bot \(\S+\) holds users:write/);
  assert.match(failing.stdout, /what to do: /);

  const json = parseJson<{ summary: { fail: number }; checks: { id: string; status: string }[] }>(await runCli(t, ['audit', '--json'], { env }));
  assert.equal(json.summary.fail, 1);
  assert.deepEqual(
    json.checks.filter((c) => c.status !== 'pass').map((c) => c.id),
    ['broad-service-accounts'],
  );
  const markdown = await runCli(t, ['audit', '--markdown'], { env });
  assert.equal(markdown.code, 4);
  assert.match(markdown.stdout, /\| FAIL \| Service accounts hold no platform-administration scope \(`broad-service-accounts`\) \| 5\.6 Minimize exposed attack surfaces \|/);
});
