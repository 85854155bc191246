import type { SqlClient } from '../packages/server/src/store/sql-client.js';
import { round } from './proc.js';

/**
 * Counts and times the statements a server in this process sends its store, from outside:
 * the SqlClient instance's methods are wrapped (no server code changes). Each statement is
 * keyed by its verb and first table ("UPDATE job_devices"); its time is the round trip seen by
 * the caller (for SQLite: the wait in the worker's queue, the statement and, for a write outside
 * a transaction, its commit with fsync). A transaction counts once, under "transaction", with its
 * whole time; the statements inside it are not seen.
 */

const METHODS = ['run', 'get', 'all', 'runMany', 'batch', 'transaction'] as const;

export interface TraceRow {
  statement: string;
  count: number;
  perDevice: number;
  meanMs: number;
  p95Ms: number;
  totalS: number;
}

export class StoreTrace {
  readonly #times = new Map<string, number[]>();
  #on = false;
  #t0 = 0;
  #wallMs = 0;

  constructor(db: SqlClient) {
    const target = db as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
    for (const m of METHODS) {
      const original = target[m]?.bind(db);
      if (!original) continue;
      target[m] = (...args: unknown[]) => {
        if (!this.#on) return original(...args);
        const key = m === 'transaction' ? 'transaction' : m === 'batch' ? 'batch' : keyOf(String(args[0]));
        const t0 = performance.now();
        return original(...args).finally(() => {
          const list = this.#times.get(key) ?? this.#times.set(key, []).get(key)!;
          list.push(performance.now() - t0);
        });
      };
    }
  }

  start(): void {
    this.#times.clear();
    this.#on = true;
    this.#t0 = performance.now();
  }

  stop(): void {
    this.#on = false;
    this.#wallMs = performance.now() - this.#t0;
  }

  /** Statements by kind, most time first; `devices` to show how many each device cost. */
  rows(devices: number): { wallS: number; statementsPerSecond: number; rows: TraceRow[] } {
    const rows = [...this.#times]
      .map(([statement, ts]) => {
        const s = [...ts].sort((a, b) => a - b);
        const total = s.reduce((a, b) => a + b, 0);
        return {
          statement,
          count: s.length,
          perDevice: round(s.length / devices, 2),
          meanMs: round(total / s.length, 2),
          p95Ms: round(s[Math.min(s.length - 1, Math.ceil(0.95 * s.length) - 1)] ?? 0, 2),
          totalS: round(total / 1000, 2),
        };
      })
      .sort((a, b) => b.totalS - a.totalS);
    const count = rows.reduce((a, r) => a + r.count, 0);
    return { wallS: round(this.#wallMs / 1000, 2), statementsPerSecond: round(count / (this.#wallMs / 1000)), rows };
  }
}

/** "UPDATE job_devices SET ref", "SELECT * FROM twins", "INSERT INTO device_certificates"…: the verb, the table and enough to tell statements apart. */
function keyOf(sql: string): string {
  const flat = sql.replace(/\s+/g, ' ').trim();
  const verb = (/^\w+/.exec(flat)?.[0] ?? '?').toUpperCase();
  if (verb === 'SELECT') return flat.replace(/ (WHERE|ORDER BY|GROUP BY|LIMIT|JOIN) .*$/i, '').slice(0, 80);
  if (verb === 'UPDATE') return (/^UPDATE \w+ SET \w+/i.exec(flat)?.[0] ?? flat).slice(0, 80);
  return (/^\w+ (?:OR \w+ )?(?:INTO|FROM) \w+/i.exec(flat)?.[0] ?? flat).slice(0, 80);
}
