import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { rewriteAuditChain as rewrite } from '../testing/audit-rewrite.js';
import { eventually } from '../testing/eventually.js';
import { type TestServer, startTestServer } from '../testing/harness.js';
import { type AuditCheckpoint, signCheckpoint } from './checkpoints.js';

interface Report {
  ok: boolean;
  problem: string | null;
  firstBadSeq: number | null;
  message: string;
  checkpoints?: { ok: boolean; pinnedSeq: number; problems: { seq: number | null; problem: string }[] };
}

const readCheckpoints = (file: string): AuditCheckpoint[] =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditCheckpoint);

async function verify(s: TestServer, token: string, checkpoints?: unknown[]): Promise<Report> {
  const res = await s.api('POST', '/api/v1/audit/verify', { token, ...(checkpoints ? { body: { checkpoints } } : {}) });
  assert.equal(res.status, 200, res.text);
  return res.body as Report;
}

describe('audit chain checkpoints', () => {
  it('writes signed checkpoints outside the database that catch a chain rewritten whole, and refuse forged ones', async (t) => {
    const s = await startTestServer(t, { config: { audit: { checkpointIntervalMs: 50 } } });
    const file = join(s.dataDir, 'audit-checkpoints.jsonl');
    const admin = await s.tokenFor(s.adminKey);
    for (const name of ['cp-1', 'cp-2', 'cp-3']) assert.equal((await s.api('POST', '/api/v1/devices', { token: admin, body: { id: name } })).status, 201);
    const head = (await s.server.store.audit.head()).seq;
    const written = await eventually(
      async () => readCheckpoints(file),
      (cs) => cs.some((c) => c.seq >= head),
    );
    assert.ok(
      written.every((c, i) => i === 0 || c.seq > (written[i - 1] as AuditCheckpoint).seq),
      'one checkpoint per head move, in order',
    );

    const good = await verify(s, admin, written);
    assert.equal(good.ok, true, good.message);
    assert.ok((good.checkpoints?.pinnedSeq ?? 0) >= head);

    // Forged or foreign checkpoints are refused, each with its reason.
    const last = written.at(-1) as AuditCheckpoint;
    const other = signCheckpoint({ seq: last.seq, hash: last.hash }, last.at, generateKeyPairSync('ed25519').privateKey);
    const forged = await verify(s, admin, [{ ...last, hash: 'f'.repeat(64) }, other, 'not json', { ...last, signature: last.signature.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')) }]);
    assert.equal(forged.ok, false);
    assert.equal(forged.problem, 'checkpoint_mismatch');
    assert.deepEqual(
      forged.checkpoints?.problems.map((p) => p.problem),
      ['bad_signature', 'other_key', 'malformed', 'bad_signature'],
    );

    // The attacker rewrites entry 2 and hashes everything after it again: the chain verifies in itself, not against the checkpoints.
    rewrite(join(s.dataDir, 'bulwark.db'), { fromSeq: 2, actor: 'someone-else' });
    assert.equal((await verify(s, admin)).ok, true, 'a rewrite made whole passes the chain walk alone');
    const caught = await verify(s, admin, written);
    assert.equal(caught.ok, false);
    assert.equal(caught.problem, 'checkpoint_mismatch');
    assert.ok(caught.checkpoints?.problems.length === written.filter((c) => c.seq >= 2).length, JSON.stringify(caught.checkpoints));
    assert.ok(caught.checkpoints?.problems.every((p) => p.problem === 'hash_mismatch'));

    // The writer does not sign the rewritten head: it refuses (a metric), and the file keeps only checkpoints that show the rewrite.
    assert.equal((await s.api('POST', '/api/v1/devices', { token: admin, body: { id: 'after-rewrite' } })).status, 201);
    const refusals = async () => Number(/^bulwark_audit_checkpoint_refusals_total (\d+)/m.exec((await s.api('GET', '/metrics', { token: admin })).text)?.[1] ?? 0);
    await eventually(refusals, (n) => n >= 1);
    const after = readCheckpoints(file);
    assert.deepEqual(
      after.map((c) => c.seq),
      written.map((c) => c.seq).concat(after.slice(written.length).map((c) => c.seq)),
    );
    const later = await verify(s, admin, after);
    assert.equal(later.ok, false, 'the newest checkpoints still catch the rewrite');
    assert.equal((await s.api('POST', '/api/v1/audit/verify', { token: admin, body: { checkpoints: [] } })).status, 400, 'an empty list checks nothing: refused');
  });

  it('catches a chain whose end was cut off and its head moved back', async (t) => {
    const s = await startTestServer(t, { config: { audit: { checkpointIntervalMs: 50 } } });
    const file = join(s.dataDir, 'audit-checkpoints.jsonl');
    const admin = await s.tokenFor(s.adminKey);
    for (const name of ['cut-1', 'cut-2']) assert.equal((await s.api('POST', '/api/v1/devices', { token: admin, body: { id: name } })).status, 201);
    const head = (await s.server.store.audit.head()).seq;
    const written = await eventually(
      async () => readCheckpoints(file),
      (cs) => cs.some((c) => c.seq >= head),
    );
    rewrite(join(s.dataDir, 'bulwark.db'), { fromSeq: 2, cutAfter: 2 });
    assert.equal((await verify(s, admin)).ok, true, 'the shortened chain verifies in itself');
    const caught = await verify(s, admin, written);
    assert.equal(caught.ok, false);
    assert.ok(
      caught.checkpoints?.problems.some((p) => p.problem === 'truncated'),
      JSON.stringify(caught.checkpoints),
    );
  });
});
