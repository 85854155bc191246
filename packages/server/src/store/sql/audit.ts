import type { AuditEntry, AuditEvent, AuditFilter, AuditHead, AuditRepository, AuditResult } from '../../audit/index.js';
import type { SqlClient, SqlEngine, SqlExecutor } from '../sql-client.js';
import { fromJson } from './json.js';
import { Where } from './where.js';

interface AuditRow {
  seq: number;
  ts: number;
  actor: string;
  action: string;
  target: string | null;
  result: string;
  request_id: string | null;
  source: string | null;
  details: string | null;
  prev_hash: string;
  hash: string;
}

const toEntry = (r: AuditRow): AuditEntry => ({
  seq: Number(r.seq),
  ts: Number(r.ts),
  actor: r.actor,
  action: r.action,
  target: r.target,
  result: r.result as AuditResult,
  requestId: r.request_id,
  source: r.source,
  details: fromJson<Record<string, unknown>>(r.details),
  prevHash: r.prev_hash,
  hash: r.hash,
});

/** Makes an entry of the chain: its hash over the event, its number and the previous hash. */
export type AuditSeal = (ts: number, event: AuditEvent, seq: number, prevHash: string) => AuditEntry;

/** The chain's last entry: its number and hash. */
export interface ChainHead {
  readonly seq: number;
  readonly hash: string;
}

/**
 * Reads the chain's head inside the caller's transaction, locked until it ends: on PostgreSQL
 * with FOR UPDATE (nodes append to one chain); on SQLite the transaction's write lock (BEGIN
 * IMMEDIATE) already keeps every other writer out, and a plain read can travel with the BEGIN.
 */
export async function lockAuditHead(tx: SqlExecutor, engine: SqlEngine): Promise<ChainHead> {
  const head = await tx.get<{ seq: number; hash: string }>(`SELECT seq, hash FROM audit_head WHERE id = 1${engine === 'postgres' ? ' FOR UPDATE' : ''}`);
  if (!head) throw new Error('audit_head row is missing');
  return { seq: Number(head.seq), hash: head.hash };
}

/**
 * Appends entries after `head` (read by lockAuditHead in the same transaction). The writes are
 * not waited for: they go out with whatever the transaction sends next (its COMMIT), and one
 * that fails fails the transaction.
 */
export function appendAuditAt(tx: SqlExecutor, head: ChainHead, items: readonly { readonly ts: number; readonly event: AuditEvent }[], seal: AuditSeal): AuditEntry[] {
  if (items.length === 0) return [];
  const entries: AuditEntry[] = [];
  let [seq, prevHash] = [head.seq + 1, head.hash];
  for (const { ts, event } of items) {
    const entry = seal(ts, event, seq, prevHash);
    entries.push(entry);
    [seq, prevHash] = [seq + 1, entry.hash];
  }
  const written = [
    tx.runMany(
      `INSERT INTO audit_log (seq, ts, actor, action, target, result, request_id, source, details, prev_hash, hash)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
      entries.map((e) => [e.seq, e.ts, e.actor, e.action, e.target, e.result, e.requestId, e.source, e.details === null ? null : JSON.stringify(e.details), e.prevHash, e.hash]),
    ),
    tx.run('UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1', [seq - 1, prevHash]),
  ];
  // Their failure is the transaction's (it rolls back and throws it).
  for (const w of written) w.catch(() => undefined);
  return entries;
}

/** Appends entries to the chain inside the caller's transaction (the audit log's own writes, and alert transitions that write their entry with the change they record). */
export async function appendAuditIn(tx: SqlExecutor, engine: SqlEngine, items: readonly { readonly ts: number; readonly event: AuditEvent }[], seal: AuditSeal): Promise<AuditEntry[]> {
  if (items.length === 0) return [];
  return appendAuditAt(tx, await lockAuditHead(tx, engine), items, seal);
}

export class SqlAuditRepository implements AuditRepository {
  constructor(private readonly db: SqlClient) {}

  async append(ts: number, event: AuditEvent, seal: (seq: number, prevHash: string) => AuditEntry): Promise<AuditEntry> {
    const [entry] = await this.appendMany([{ ts, event }], (_ts, _event, seq, prevHash) => seal(seq, prevHash));
    return entry as AuditEntry;
  }

  appendMany(items: readonly { readonly ts: number; readonly event: AuditEvent }[], seal: AuditSeal): Promise<AuditEntry[]> {
    if (items.length === 0) return Promise.resolve([]);
    return this.db.transaction((tx) => appendAuditIn(tx, this.db.engine, items, seal));
  }

  async list(f: AuditFilter): Promise<AuditEntry[]> {
    const w = new Where().add('actor = ?', f.actor).add('action = ?', f.action).add('result = ?', f.result).add('ts >= ?', f.sinceMs).add('ts < ?', f.untilMs).add('seq < ?', f.beforeSeq);
    const sql = `SELECT * FROM audit_log ${w} ORDER BY seq DESC LIMIT ${w.next(f.limit)}`;
    return (await this.db.all<AuditRow>(sql, w.params)).map(toEntry);
  }

  async scan(afterSeq: number, limit: number): Promise<AuditEntry[]> {
    return (await this.db.all<AuditRow>('SELECT * FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2', [afterSeq, limit])).map(toEntry);
  }

  async head(): Promise<AuditHead> {
    const row = await this.db.get<{ seq: number; hash: string }>('SELECT seq, hash FROM audit_head WHERE id = 1');
    return { seq: Number(row?.seq ?? 0), hash: row?.hash ?? '' };
  }
}
