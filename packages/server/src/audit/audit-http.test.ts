import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { type TestServer, startTestServer } from '../testing/harness.js';

/** Opens the server's own SQLite file beside it, as an intruder with file access would. */
function tamper(s: TestServer, sql: string, ...params: unknown[]): void {
  const db = new Database(join(s.dataDir, 'bulwark.db'));
  try {
    db.prepare(sql).run(...params);
  } finally {
    db.close();
  }
}

async function withEntries(t: Parameters<typeof startTestServer>[0]) {
  const s = await startTestServer(t);
  const admin = await s.tokenFor(s.adminKey);
  for (const name of ['u1', 'u2', 'u3']) {
    assert.equal((await s.api('POST', '/api/v1/users', { token: admin, body: { name, role: 'viewer' } })).status, 201);
  }
  const verify = () => s.api('POST', '/api/v1/audit/verify', { token: admin });
  return { s, admin, verify };
}

describe('the audit log', () => {
  it('records every state change and every refused call with actor, action, target, result and request id', async (t) => {
    const s = await startTestServer(t);
    const admin = await s.tokenFor(s.adminKey);
    const created = await s.api('POST', '/api/v1/users', { token: admin, body: { name: 'alice', role: 'operator' }, headers: { 'x-request-id': 'req-create-alice' } });
    assert.equal(created.headers.get('x-request-id'), 'req-create-alice');
    await s.api('GET', '/api/v1/users');
    await s.api('POST', '/api/v1/auth/token', { body: { key: 'bwk.key_nope.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' } });
    const me = await s.api('GET', '/api/v1/auth/whoami', { token: admin });
    const list = await s.api('GET', '/api/v1/audit?limit=50', { token: admin });
    assert.equal(list.status, 200);
    const entries = list.body as { actor: string; action: string; target: string; result: string; requestId: string; source: string; details: Record<string, unknown> }[];
    const create = entries.find((e) => e.action === 'user.create');
    assert.deepEqual({ actor: create?.actor, target: create?.target, result: create?.result, requestId: create?.requestId }, { actor: me.body.principal.id, target: created.body.id, result: 'ok', requestId: 'req-create-alice' });
    assert.ok(create?.source, 'the source address is recorded');
    const anonymous = entries.find((e) => e.action === 'http.refused' && e.details.route === '/api/v1/users');
    assert.equal(anonymous?.actor, 'anonymous');
    assert.equal(anonymous?.result, 'denied');
    const badKey = entries.find((e) => e.action === 'auth.token' && e.result === 'denied');
    assert.equal(badKey?.target, 'key_nope');
    assert.ok(entries.some((e) => e.action === 'auth.token' && e.result === 'ok' && e.actor === me.body.principal.id));
    assert.ok(!entries.some((e) => e.action.startsWith('http.get')), 'successful reads are not audited');
    assert.ok(entries.some((e) => e.action === 'platform.bootstrap' && e.actor === 'system'));
    const filtered = await s.api('GET', '/api/v1/audit?action=user.create', { token: admin });
    assert.deepEqual(
      filtered.body.map((e: { action: string }) => e.action),
      ['user.create'],
    );
    const seqs = entries.map((e) => (e as unknown as { seq: number }).seq);
    assert.deepEqual(
      seqs,
      [...seqs].sort((a, b) => b - a),
      'newest first',
    );
  });

  it('verifies an untouched chain', async (t) => {
    const { verify } = await withEntries(t);
    const report = await verify();
    assert.equal(report.status, 200);
    assert.equal(report.body.ok, true);
    assert.ok(report.body.entriesChecked >= 5);
  });

  it('verifies cleanly while other requests keep appending', async (t) => {
    const { s, admin, verify } = await withEntries(t);
    const writers = Array.from({ length: 40 }, (_, i) => s.api('POST', '/api/v1/users', { token: admin, body: { name: `w${i}`, role: 'viewer' } }));
    const reports = await Promise.all([verify(), verify(), verify(), ...writers]);
    for (const r of reports.slice(0, 3)) assert.equal(r.body.ok, true, JSON.stringify(r.body));
  });

  it('detects an edited entry', async (t) => {
    const { s, verify } = await withEntries(t);
    tamper(s, "UPDATE audit_log SET actor = 'someone-else' WHERE seq = 3");
    const report = (await verify()).body;
    assert.equal(report.ok, false);
    assert.equal(report.problem, 'hash_mismatch');
    assert.equal(report.firstBadSeq, 3);
  });

  it('detects an entry edited together with its own hash', async (t) => {
    const { s, verify } = await withEntries(t);
    tamper(s, "UPDATE audit_log SET result = 'ok', hash = 'aaaa' WHERE seq = 2");
    const report = (await verify()).body;
    assert.equal(report.ok, false);
    assert.equal(report.firstBadSeq, 2);
  });

  it('detects a deleted entry in the middle', async (t) => {
    const { s, verify } = await withEntries(t);
    tamper(s, 'DELETE FROM audit_log WHERE seq = 2');
    const report = (await verify()).body;
    assert.equal(report.ok, false);
    assert.equal(report.problem, 'missing_entries');
    assert.equal(report.firstBadSeq, 2);
  });

  it('detects entries cut off the end', async (t) => {
    const { s, verify } = await withEntries(t);
    const head = await s.server.store.audit.head();
    tamper(s, 'DELETE FROM audit_log WHERE seq = $seq', { seq: head.seq });
    const report = (await verify()).body;
    assert.equal(report.ok, false);
    assert.equal(report.problem, 'head_mismatch');
  });

  it('detects a renumbered chain (an entry removed and the rest shifted down)', async (t) => {
    const { s, verify } = await withEntries(t);
    tamper(s, 'DELETE FROM audit_log WHERE seq = 2');
    tamper(s, 'UPDATE audit_log SET seq = seq - 1 WHERE seq > 2');
    const report = (await verify()).body;
    assert.equal(report.ok, false);
    assert.equal(report.firstBadSeq, 2);
  });
});
