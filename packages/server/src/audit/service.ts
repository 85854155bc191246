import { type Clock, GroupCommit } from '@bulwark/core';
import type { AuditEntry, AuditEvent, AuditFilter, AuditRepository } from './audit.js';
import { type VerifyReport, sealEntry, verifyChain } from './chain.js';
import { type CheckpointKeys, type CheckpointReport, checkCheckpoints } from './checkpoints.js';

/**
 * Writes, lists and verifies the append-only, hash-chained audit log. Entries recorded in
 * the same moment are written together (one transaction, one chain step each, in call
 * order), one batch at a time: a burst of changes (alerts firing across a fleet) costs a few
 * transactions, not one each.
 */
export class AuditService {
  readonly #writes: GroupCommit<{ ts: number; event: AuditEvent }, AuditEntry>;

  constructor(
    private readonly repo: AuditRepository,
    private readonly clock: Clock,
    private readonly onAppend: () => void = () => undefined,
    private readonly checkpointKeys?: CheckpointKeys,
  ) {
    this.#writes = new GroupCommit((items) => this.repo.appendMany(items, (ts, event, seq, prevHash) => sealEntry(seq, ts, event, prevHash)), {
      maxItems: 256,
      maxDelayMs: 0,
      maxInFlight: 1,
    });
  }

  async record(event: AuditEvent): Promise<AuditEntry> {
    const entry = await this.#writes.add({ ts: this.clock.now(), event });
    this.onAppend();
    return entry;
  }

  /** Entries another context appended in its own transaction (alert transitions): counted like this service's own. */
  appended(entries: number): void {
    for (let i = 0; i < entries; i += 1) this.onAppend();
  }

  /** Writes what is waiting (before the store closes). */
  flush(): Promise<void> {
    return this.#writes.drain();
  }

  list(filter: AuditFilter): Promise<AuditEntry[]> {
    return this.repo.list(filter);
  }

  /**
   * Walks the chain; with checkpoints (signed heads kept outside the database), also checks
   * that each is the platform's and still matches the chain, which a chain rewritten whole and
   * hashed again does not.
   */
  async verify(checkpoints?: readonly unknown[]): Promise<VerifyReport & { checkpoints?: CheckpointReport }> {
    const chain = await verifyChain((after, limit) => this.repo.scan(after, limit), await this.repo.head());
    if (checkpoints === undefined) return chain;
    const report = await checkCheckpoints(checkpoints, await this.checkpointKeys?.verifying(), this.repo);
    if (!chain.ok || report.ok) {
      return { ...chain, checkpoints: report, ...(chain.ok ? { message: `${chain.message}; ${report.checked} checkpoints match (the chain is pinned up to entry ${report.pinnedSeq})` } : {}) };
    }
    const first = report.problems[0];
    const seqs = report.problems.flatMap((p) => (p.seq === null ? [] : [p.seq]));
    return {
      ...chain,
      ok: false,
      problem: 'checkpoint_mismatch',
      firstBadSeq: seqs.length > 0 ? Math.min(...seqs) : null,
      message: `${report.problems.length} of ${report.checked} checkpoints do not match: ${first?.message ?? ''}`,
      checkpoints: report,
    };
  }
}
