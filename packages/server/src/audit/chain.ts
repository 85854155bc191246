import { createHash } from 'node:crypto';
import type { AuditEntry, AuditEvent, AuditHead } from './audit.js';

export const GENESIS_HASH = '0'.repeat(64);

/** The hash of an entry: SHA-256 over a fixed-order JSON array of every field and the previous hash. */
export function entryHash(seq: number, ts: number, event: AuditEvent, prevHash: string): string {
  const canonical = JSON.stringify([seq, ts, event.actor, event.action, event.target, event.result, event.requestId, event.source, event.details === null ? null : JSON.stringify(event.details), prevHash]);
  return createHash('sha256').update(canonical).digest('hex');
}

export function sealEntry(seq: number, ts: number, event: AuditEvent, prevHash: string): AuditEntry {
  return { ...event, seq, ts, prevHash, hash: entryHash(seq, ts, event, prevHash) };
}

/** checkpoint_mismatch: the chain verifies in itself, but not against a signed checkpoint of it (it was rewritten whole). */
export type ChainProblem = 'hash_mismatch' | 'broken_link' | 'missing_entries' | 'head_mismatch' | 'checkpoint_mismatch';

export interface VerifyReport {
  readonly ok: boolean;
  readonly entriesChecked: number;
  readonly headSeq: number;
  readonly firstBadSeq: number | null;
  readonly problem: ChainProblem | null;
  readonly message: string;
}

/**
 * Walks the chain in pages, oldest first, and reports the first entry that was edited
 * (its hash no longer matches), removed (a gap in seq or a broken link), or a tail that was
 * cut off (the head names an entry that is gone).
 */
export async function verifyChain(scan: (afterSeq: number, limit: number) => Promise<AuditEntry[]>, head: AuditHead, pageSize = 1000): Promise<VerifyReport> {
  let prevHash = GENESIS_HASH;
  let expectedSeq = 1;
  let checked = 0;
  const fail = (seq: number, problem: ChainProblem, message: string): VerifyReport => ({ ok: false, entriesChecked: checked, headSeq: head.seq, firstBadSeq: seq, problem, message });

  for (;;) {
    // Stop at the head read at the start: entries appended while we walk are not our concern.
    if (checked >= head.seq) break;
    const page = await scan(expectedSeq - 1, Math.min(pageSize, head.seq - checked));
    if (page.length === 0) break;
    for (const e of page) {
      if (e.seq !== expectedSeq) return fail(expectedSeq, 'missing_entries', `entry ${expectedSeq} is missing (next present is ${e.seq})`);
      if (e.prevHash !== prevHash) return fail(e.seq, 'broken_link', `entry ${e.seq} does not link to the entry before it`);
      if (entryHash(e.seq, e.ts, e, e.prevHash) !== e.hash) return fail(e.seq, 'hash_mismatch', `entry ${e.seq} was altered after it was written`);
      prevHash = e.hash;
      expectedSeq += 1;
      checked += 1;
    }
  }
  if (checked !== head.seq || prevHash !== head.hash) {
    return fail(checked + 1, 'head_mismatch', `the chain ends at entry ${checked} but the head records entry ${head.seq}: entries were removed from the end`);
  }
  return { ok: true, entriesChecked: checked, headSeq: head.seq, firstBadSeq: null, problem: null, message: `all ${checked} entries verify` };
}
