import type { Clock } from '@bulwark/core';
import type { AuditEntry, AuditEvent, AuditFilter, AuditRepository } from './audit.js';
import { type VerifyReport, sealEntry, verifyChain } from './chain.js';

/** Writes, lists and verifies the append-only, hash-chained audit log. */
export class AuditService {
  constructor(private readonly repo: AuditRepository, private readonly clock: Clock, private readonly onAppend: () => void = () => undefined) {}

  async record(event: AuditEvent): Promise<AuditEntry> {
    const ts = this.clock.now();
    const entry = await this.repo.append(ts, event, (seq, prevHash) => sealEntry(seq, ts, event, prevHash));
    this.onAppend();
    return entry;
  }

  list(filter: AuditFilter): Promise<AuditEntry[]> {
    return this.repo.list(filter);
  }

  async verify(): Promise<VerifyReport> {
    return verifyChain((after, limit) => this.repo.scan(after, limit), await this.repo.head());
  }
}
