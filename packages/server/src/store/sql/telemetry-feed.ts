import { PlatformError } from '@bulwark/core';
import type { FeedFilter, FeedPage, TelemetryFeed } from '../../ingest/index.js';
import type { SqlClient, SqlValue } from '../sql-client.js';
import { toRecord, type TelemetryRow } from './telemetry.js';

export interface FeedSettings {
  /** Feed positions looked at per read before the filter (bounds the work of a filtered reader far behind). */
  readonly scanWindow: number;
  /**
   * A missing position followed by an entry stored longer ago than this is taken as gone
   * (rolled back or deleted), not as a write still under way. SQLite: 0 (one writer).
   */
  readonly gapMs: number;
}

const DEFAULTS: Readonly<Record<SqlClient['engine'], FeedSettings>> = {
  sqlite: { scanWindow: 5000, gapMs: 0 },
  postgres: { scanWindow: 5000, gapMs: 30_000 },
};

const NOW_SQL: Readonly<Record<SqlClient['engine'], string>> = {
  sqlite: "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)",
  postgres: '(extract(epoch FROM clock_timestamp()) * 1000)::bigint',
};

/**
 * The store's telemetry as a feed (embedded mode, and one node on PostgreSQL without the
 * stream): `telemetry_feed`, filled by a trigger on telemetry, numbers every stored reading;
 * a position is that number (docs/decisions/0018).
 *
 * A reader never passes a number that is missing but may still appear. With one writer that
 * commits in order (SQLite) a missing number was deleted. On PostgreSQL two group commits can
 * be under way at once and the later one may commit first, so a hole is waited for until the
 * entry after it has been stored for `gapMs`; then it is taken as rolled back or deleted.
 */
export class SqlTelemetryFeed implements TelemetryFeed {
  readonly #settings: FeedSettings;

  constructor(
    private readonly db: SqlClient,
    settings: Partial<FeedSettings> = {},
  ) {
    this.#settings = { ...DEFAULTS[db.engine], ...settings };
  }

  async read(after: string, filter: FeedFilter, limit: number): Promise<FeedPage> {
    const from = parsePosition(after);
    const { upTo, gaps } = await this.#settled(from);
    if (upTo === from) return { entries: [], next: after, skipped: 0 };
    const params: SqlValue[] = [from, upTo];
    let where = 'f.seq > $1 AND f.seq <= $2';
    const inList = (column: string, values: readonly string[] | undefined) => {
      if (!values || values.length === 0) return;
      where += ` AND ${column} IN (${values.map((v) => `$${params.push(v)}`).join(', ')})`;
    };
    inList('f.schema_id', filter.schemaIds);
    inList('f.device_id', filter.deviceIds);
    const rows = await this.db.all<TelemetryRow & { feed_seq: number | string }>(
      `SELECT t.*, f.seq AS feed_seq FROM telemetry_feed f JOIN telemetry t ON t.device_id = f.device_id AND t.msg_id = f.msg_id
       WHERE ${where} ORDER BY f.seq LIMIT ${Math.max(1, Math.trunc(limit))}`,
      params,
    );
    const full = rows.length >= limit;
    const next = full ? Number(rows.at(-1)?.feed_seq) : upTo;
    const skipped = gaps.filter((g) => g.at <= next).reduce((n, g) => n + g.size, 0);
    return { entries: rows.map((r) => ({ position: String(r.feed_seq), record: toRecord(r) })), next: String(next), skipped };
  }

  async head(): Promise<string> {
    const row = await this.db.get<{ seq: number | string | null }>('SELECT max(seq) AS seq FROM telemetry_feed');
    return String(row?.seq ?? 0);
  }

  async positionAt(sinceMs: number): Promise<string> {
    const row = await this.db.get<{ seq: number | string | null }>('SELECT min(seq) AS seq FROM telemetry_feed WHERE received_at >= $1', [sinceMs]);
    if (row?.seq === null || row?.seq === undefined) return this.head();
    return String(Number(row.seq) - 1);
  }

  /** Entries removed or rolled back below this are past: how far `from` may read now, and the holes skipped on the way. */
  async #settled(from: number): Promise<{ upTo: number; gaps: { at: number; size: number }[] }> {
    const rows = await this.db.all<{ seq: number | string; stored_at: number | string; now: number | string }>(`SELECT seq, stored_at, ${NOW_SQL[this.db.engine]} AS now FROM telemetry_feed WHERE seq > $1 ORDER BY seq LIMIT ${this.#settings.scanWindow}`, [
      from,
    ]);
    let upTo = from;
    const gaps: { at: number; size: number }[] = [];
    for (const r of rows) {
      const seq = Number(r.seq);
      if (seq !== upTo + 1) {
        // A hole: gone for good once the entry after it is old enough (never on SQLite's single writer).
        const settled = Number(r.now) - Number(r.stored_at) >= this.#settings.gapMs;
        if (!settled) break;
        gaps.push({ at: seq, size: seq - upTo - 1 });
      }
      upTo = seq;
    }
    return { upTo, gaps };
  }
}

function parsePosition(position: string): number {
  if (!/^\d{1,16}$/.test(position)) throw new PlatformError('BULWARK_ERR_BAD_REQUEST', `"${position}" is not a position of the store's telemetry feed`);
  return Number(position);
}
