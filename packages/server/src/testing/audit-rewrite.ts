import Database from 'better-sqlite3';
import { entryHash } from '../audit/chain.js';

interface Row {
  seq: number;
  ts: number;
  actor: string;
  action: string;
  target: string | null;
  result: string;
  request_id: string | null;
  source: string | null;
  details: string | null;
}

/**
 * Test-only: what an attacker with the SQLite file can do to the audit log: rewrite entries
 * from `fromSeq` on (here: the actor of that one) and hash the chain again, head included, so
 * it verifies in itself; or cut its end off after `cutAfter` and move the head back. One
 * transaction, so a running server's own appends wait.
 */
export function rewriteAuditChain(dbFile: string, edit: { fromSeq: number; actor?: string; cutAfter?: number }): void {
  const db = new Database(dbFile);
  try {
    db.transaction(() => {
      if (edit.cutAfter !== undefined) db.prepare('DELETE FROM audit_log WHERE seq > ?').run(edit.cutAfter);
      const rows = db.prepare('SELECT seq, ts, actor, action, target, result, request_id, source, details FROM audit_log WHERE seq >= ? ORDER BY seq').all(edit.fromSeq) as Row[];
      let prev = (db.prepare('SELECT hash FROM audit_log WHERE seq = ?').get(edit.fromSeq - 1) as { hash: string }).hash;
      for (const r of rows) {
        const actor = r.seq === edit.fromSeq && edit.actor !== undefined ? edit.actor : r.actor;
        const event = { actor, action: r.action, target: r.target, result: r.result as 'ok', requestId: r.request_id, source: r.source, details: r.details === null ? null : (JSON.parse(r.details) as Record<string, unknown>) };
        const hash = entryHash(r.seq, Number(r.ts), event, prev);
        db.prepare('UPDATE audit_log SET actor = ?, prev_hash = ?, hash = ? WHERE seq = ?').run(actor, prev, hash, r.seq);
        prev = hash;
      }
      const last = rows.at(-1)?.seq ?? edit.fromSeq - 1;
      db.prepare('UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1').run(last, prev);
    }).immediate();
  } finally {
    db.close();
  }
}
