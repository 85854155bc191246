import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { rewriteAuditChain } from '../packages/server/src/testing/audit-rewrite.js';
import { eventually } from '../packages/server/src/testing/eventually.js';
import { type CliResult, parseJson, runCli, tempDir } from './support/cli.js';
import { startServer } from './support/server.js';

const ok = (r: CliResult, what: string) => assert.equal(r.code, 0, `${what} failed:\n${r.stdout}\n${r.stderr}`);

/**
 * The anchored audit trail from the operator's side: `bulwark start` appends signed checkpoints
 * to a file of the operator's choosing, and `bulwark audit-log verify --checkpoint FILE`
 * catches a chain an attacker rewrote whole in the database (exit code 3), which the chain
 * walk alone does not.
 */
it('audit-log verify --checkpoint catches a chain rewritten whole', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const dataDir = join(dir, 'data');
  const checkpointFile = join(dir, 'elsewhere', 'audit-checkpoints.jsonl');
  const env = { BULWARK_CLI_CONFIG: join(dir, 'cli', 'credentials.json'), BULWARK_AUDIT_CHECKPOINT_INTERVAL_MS: '200' };
  const server = await startServer(t, dataDir, { env, args: ['--audit-checkpoint-file', checkpointFile] });
  ok(await runCli(t, ['login', '--url', server.url, '--key', server.adminKey ?? ''], { env }), 'login');
  ok(await runCli(t, ['devices', 'create', 'anchored-1'], { env }), 'devices create');
  const headSeq = parseJson<{ headSeq: number }>(await runCli(t, ['audit-log', 'verify', '--json'], { env })).headSeq;
  await eventually(
    async () => (existsSync(checkpointFile) ? readFileSync(checkpointFile, 'utf8') : ''),
    (text) =>
      text
        .split('\n')
        .filter(Boolean)
        .some((l) => (JSON.parse(l) as { seq: number }).seq >= headSeq),
  );

  const good = await runCli(t, ['audit-log', 'verify', '--checkpoint', checkpointFile], { env });
  ok(good, 'verify with checkpoints');
  assert.match(good.stdout, /checkpoints match \(the chain is pinned up to entry \d+\)/);

  rewriteAuditChain(join(dataDir, 'bulwark.db'), { fromSeq: 2, actor: 'mallory' });
  ok(await runCli(t, ['audit-log', 'verify'], { env }), 'the chain walk alone passes a rewrite made whole');
  const caught = await runCli(t, ['audit-log', 'verify', '--checkpoint', checkpointFile], { env });
  assert.equal(caught.code, 3, caught.stdout + caught.stderr);
  assert.match(caught.stdout, /AUDIT LOG BROKEN at entry 2: checkpoint_mismatch/);
  assert.match(caught.stdout, /checkpoint \d+: hash_mismatch: entry \d+ no longer has the hash signed at/);

  const missing = await runCli(t, ['audit-log', 'verify', '--checkpoint', join(dir, 'nope.jsonl')], { env });
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /BULWARK_CLI_FILE: cannot read the checkpoint file/);
});
