/** What happened, who did it, to what, and how it ended. */
/** `revoked`: refused because the credential, though genuine, is revoked, expired or its principal disabled. */
export type AuditResult = 'ok' | 'denied' | 'revoked' | 'error';

export interface AuditEvent {
  /** Principal id, or `anonymous` for a refused call without valid credentials, or `system`. */
  readonly actor: string;
  /** Dotted verb, e.g. `key.create`, `auth.token`, `http.refused`. */
  readonly action: string;
  readonly target: string | null;
  readonly result: AuditResult;
  readonly requestId: string | null;
  /** Where the call came from (remote address), when known. */
  readonly source: string | null;
  readonly details: Readonly<Record<string, unknown>> | null;
}

export interface AuditEntry extends AuditEvent {
  readonly seq: number;
  readonly ts: number;
  /** Hash of the entry before this one (64 zeros for the first). */
  readonly prevHash: string;
  /** SHA-256 over this entry's fields and prevHash. */
  readonly hash: string;
}

export interface AuditFilter {
  readonly actor?: string;
  readonly action?: string;
  readonly result?: AuditResult;
  readonly sinceMs?: number;
  readonly untilMs?: number;
  /** Only entries with a smaller seq (paging backwards from the newest). */
  readonly beforeSeq?: number;
  readonly limit: number;
}

export interface AuditHead {
  readonly seq: number;
  readonly hash: string;
}

export interface AuditRepository {
  /**
   * Appends one entry atomically: reads the chain head, computes the entry with `seal`,
   * stores it and moves the head, all in one transaction so concurrent writers (even on
   * several nodes sharing PostgreSQL) form one unbroken chain.
   */
  append(ts: number, event: AuditEvent, seal: (seq: number, prevHash: string) => AuditEntry): Promise<AuditEntry>;
  /** Appends several entries, in order, in one transaction (one chain step each). */
  appendMany(items: readonly { readonly ts: number; readonly event: AuditEvent }[], seal: (ts: number, event: AuditEvent, seq: number, prevHash: string) => AuditEntry): Promise<AuditEntry[]>;
  /** Newest first. */
  list(filter: AuditFilter): Promise<AuditEntry[]>;
  /** Oldest first, entries with seq > afterSeq, at most `limit`. */
  scan(afterSeq: number, limit: number): Promise<AuditEntry[]>;
  head(): Promise<AuditHead>;
}
