import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type AuditEntry, type AuditEvent, type AuditRepository, GENESIS_HASH, sealEntry, verifyChain } from '../../audit/index.js';
import { type MakeStore, T0 } from './principal-repository.contract.js';
import { settleAll } from './sql-client.contract.js';

export function auditEvent(over: Partial<AuditEvent> = {}): AuditEvent {
  return { actor: 'usr_1', action: 'key.create', target: 'key_1', result: 'ok', requestId: 'req-1', source: '127.0.0.1', details: null, ...over };
}

/** Appends the way AuditService does: the entry is sealed with the seq and hash the store hands out. */
export function appendEvent(audit: AuditRepository, ts: number, event: AuditEvent = auditEvent()): Promise<AuditEntry> {
  return audit.append(ts, event, (seq, prevHash) => sealEntry(seq, ts, event, prevHash));
}

export async function verifyRepository(audit: AuditRepository, pageSize?: number): ReturnType<typeof verifyChain> {
  return verifyChain((after, limit) => audit.scan(after, limit), await audit.head(), pageSize);
}

/** The AuditRepository port: an append-only hash chain, listed newest first and scanned oldest first. */
export function describeAuditRepository(make: MakeStore): void {
  describe('AuditRepository contract', () => {
    it('starts with an empty chain at the genesis hash', async (t) => {
      const { audit } = await make(t);
      assert.deepEqual(await audit.head(), { seq: 0, hash: GENESIS_HASH });
      assert.deepEqual(await audit.list({ limit: 10 }), []);
      assert.deepEqual(await audit.scan(0, 10), []);
      assert.equal((await verifyRepository(audit)).ok, true);
    });

    it('chains appended entries and moves the head', async (t) => {
      const { audit } = await make(t);
      const details = { scopes: ['devices:read'], nested: { n: 1, flag: true, none: null }, text: 'ünïcødé' };
      const events = [auditEvent(), auditEvent({ actor: 'system', target: null, requestId: null, source: null, details }), auditEvent({ result: 'denied' })];
      const written: AuditEntry[] = [];
      for (const [i, e] of events.entries()) written.push(await appendEvent(audit, T0 + i, e));
      assert.deepEqual(
        written.map((e) => e.seq),
        [1, 2, 3],
      );
      assert.equal(written[0]?.prevHash, GENESIS_HASH);
      assert.equal(written[1]?.prevHash, written[0]?.hash);
      assert.equal(written[2]?.prevHash, written[1]?.hash);
      assert.deepEqual(await audit.head(), { seq: 3, hash: written[2]?.hash });
      assert.deepEqual(await audit.scan(0, 10), written, 'stored entries equal the sealed ones');
      assert.deepEqual((await audit.scan(0, 10))[1]?.details, details);
      assert.deepEqual(await verifyRepository(audit), { ok: true, entriesChecked: 3, headSeq: 3, firstBadSeq: null, problem: null, message: 'all 3 entries verify' });
    });

    it('appends several entries in one transaction as consecutive chain steps, concurrent batches forming one chain', async (t) => {
      const { audit } = await make(t);
      await appendEvent(audit, T0);
      const seal = (ts: number, event: AuditEvent, seq: number, prevHash: string) => sealEntry(seq, ts, event, prevHash);
      const batches = await Promise.all(
        [0, 1, 2].map((b) =>
          audit.appendMany(
            [1, 2, 3].map((i) => ({ ts: T0 + b * 10 + i, event: auditEvent({ target: `t${b}-${i}` }) })),
            seal,
          ),
        ),
      );
      assert.deepEqual(
        batches
          .flat()
          .map((e) => e.seq)
          .sort((a, b) => a - b),
        [2, 3, 4, 5, 6, 7, 8, 9, 10],
      );
      for (const batch of batches)
        assert.deepEqual(
          batch.map((e) => e.target),
          batch.map((_, i) => `${batch[0]?.target?.split('-')[0]}-${i + 1}`),
        );
      assert.deepEqual(await audit.appendMany([], seal), []);
      assert.deepEqual(await verifyRepository(audit), { ok: true, entriesChecked: 10, headSeq: 10, firstBadSeq: null, problem: null, message: 'all 10 entries verify' });
    });

    it('leaves the chain untouched when sealing fails', async (t) => {
      const { audit } = await make(t);
      const first = await appendEvent(audit, T0);
      await assert.rejects(
        audit.append(T0 + 1, auditEvent(), () => {
          throw new Error('seal failed');
        }),
        /seal failed/,
      );
      assert.deepEqual(await audit.head(), { seq: 1, hash: first.hash });
      const next = await appendEvent(audit, T0 + 2);
      assert.equal(next.seq, 2);
      assert.equal(next.prevHash, first.hash);
      assert.equal((await verifyRepository(audit)).ok, true);
    });

    it('lists newest first, filtered by actor, action, result, time and seq, up to a limit', async (t) => {
      const { audit } = await make(t);
      const rows: [number, Partial<AuditEvent>][] = [
        [T0 + 100, { actor: 'usr_1', action: 'auth.token', result: 'ok' }],
        [T0 + 200, { actor: 'usr_2', action: 'key.create', result: 'ok' }],
        [T0 + 200, { actor: 'usr_1', action: 'key.create', result: 'denied' }],
        [T0 + 300, { actor: 'anonymous', action: 'http.refused', result: 'denied' }],
        [T0 + 400, { actor: 'usr_1', action: 'key.revoke', result: 'error' }],
        [T0 + 500, { actor: 'usr_1', action: 'key.create', result: 'ok' }],
      ];
      for (const [ts, e] of rows) await appendEvent(audit, ts, auditEvent(e));
      const seqs = async (f: Parameters<AuditRepository['list']>[0]) => (await audit.list(f)).map((e) => e.seq);
      assert.deepEqual(await seqs({ limit: 100 }), [6, 5, 4, 3, 2, 1]);
      assert.deepEqual(await seqs({ limit: 2 }), [6, 5]);
      assert.deepEqual(await seqs({ actor: 'usr_1', limit: 100 }), [6, 5, 3, 1]);
      assert.deepEqual(await seqs({ action: 'key.create', limit: 100 }), [6, 3, 2]);
      assert.deepEqual(await seqs({ result: 'denied', limit: 100 }), [4, 3]);
      assert.deepEqual(await seqs({ sinceMs: T0 + 200, limit: 100 }), [6, 5, 4, 3, 2], 'since is inclusive');
      assert.deepEqual(await seqs({ untilMs: T0 + 300, limit: 100 }), [3, 2, 1], 'until is exclusive');
      assert.deepEqual(await seqs({ sinceMs: T0 + 200, untilMs: T0 + 400, limit: 100 }), [4, 3, 2]);
      assert.deepEqual(await seqs({ beforeSeq: 4, limit: 100 }), [3, 2, 1]);
      assert.deepEqual(await seqs({ beforeSeq: 6, limit: 2 }), [5, 4]);
      assert.deepEqual(await seqs({ actor: 'usr_1', action: 'key.create', result: 'ok', limit: 100 }), [6]);
      assert.deepEqual(await seqs({ actor: 'usr_1', sinceMs: T0 + 150, beforeSeq: 6, limit: 1 }), [5]);
      assert.deepEqual(await seqs({ actor: 'nobody', limit: 100 }), []);
      const [newest] = await audit.list({ limit: 1 });
      assert.deepEqual(newest, (await audit.scan(5, 1))[0], 'list returns whole entries');
    });

    it('scans oldest first in pages', async (t) => {
      const { audit } = await make(t);
      for (let i = 0; i < 7; i += 1) await appendEvent(audit, T0 + i);
      const page = async (after: number) => (await audit.scan(after, 3)).map((e) => e.seq);
      assert.deepEqual(await page(0), [1, 2, 3]);
      assert.deepEqual(await page(3), [4, 5, 6]);
      assert.deepEqual(await page(6), [7]);
      assert.deepEqual(await page(7), []);
      assert.deepEqual(await page(2), [3, 4, 5]);
      const report = await verifyRepository(audit, 2);
      assert.equal(report.ok, true, report.message);
      assert.equal(report.entriesChecked, 7);
    });

    it('forms one unbroken chain from 50 appends started together', async (t) => {
      const { audit } = await make(t);
      const written = await settleAll(Array.from({ length: 50 }, (_, i) => appendEvent(audit, T0 + i, auditEvent({ target: `t${i}` }))));
      assert.deepEqual(
        written.map((e) => e.seq).sort((a, b) => a - b),
        Array.from({ length: 50 }, (_, i) => i + 1),
      );
      const stored = await audit.scan(0, 100);
      assert.deepEqual(
        stored.map((e) => e.seq),
        Array.from({ length: 50 }, (_, i) => i + 1),
      );
      for (const [i, e] of stored.entries()) assert.equal(e.prevHash, i === 0 ? GENESIS_HASH : stored[i - 1]?.hash, `link at seq ${e.seq}`);
      assert.deepEqual(new Set(stored.map((e) => e.target)).size, 50, 'every append is stored once');
      assert.deepEqual(await audit.head(), { seq: 50, hash: stored[49]?.hash });
      const report = await verifyRepository(audit);
      assert.equal(report.ok, true, report.message);
      assert.equal(report.entriesChecked, 50);
    });
  });
}
