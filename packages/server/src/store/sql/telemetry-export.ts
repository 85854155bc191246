import type { ExportPageQuery, TelemetryExportSource, TelemetryRecord } from '../../ingest/index.js';
import type { SqlClient } from '../sql-client.js';
import { num } from './json.js';
import { HAS_TAG, Where, tagPattern } from './where.js';

interface ExportRow {
  device_id: string;
  msg_id: string;
  schema_id: string;
  seq: number | null;
  boot: string | null;
  device_ts: number | null;
  received_at: number;
  ts: number;
  skew_ms: number | null;
  data: string;
}

const COLUMNS = 'device_id, msg_id, schema_id, seq, boot, device_ts, received_at, ts, skew_ms, data';

/**
 * Pages of an export in keyset order over the telemetry table's (device_id, ts) index: each
 * page starts right after the last reading of the page before, so a page costs the same
 * wherever it is in the export, and nothing is held between pages. A page after a position is
 * read in two steps that both seek in the index: the rest of the position's device, then the
 * devices after it (one condition mixing both would make the engine scan each device from the
 * start of the range, so that later pages cost more and more).
 */
export class SqlTelemetryExport implements TelemetryExportSource {
  constructor(private readonly db: SqlClient) {}

  async exportPage(q: ExportPageQuery): Promise<TelemetryRecord[]> {
    const { after } = q;
    if (!after) return this.#select(q, q.sinceMs, () => undefined, q.limit);
    const rest = await this.#select(
      q,
      Math.max(q.sinceMs, after.ts),
      (w) => {
        const [d, t, m] = [w.next(after.deviceId), w.next(after.ts), w.next(after.msgId)];
        w.raw(`device_id = ${d}`).raw(`(ts, msg_id) > (${t}, ${m})`);
      },
      q.limit,
    );
    if (rest.length === q.limit || (q.filter.kind === 'device' && q.filter.deviceId === after.deviceId)) return rest;
    const later = await this.#select(q, q.sinceMs, (w) => w.add('device_id > ?', after.deviceId), q.limit - rest.length);
    return [...rest, ...later];
  }

  async #select(q: ExportPageQuery, fromMs: number, position: (w: Where) => void, limit: number): Promise<TelemetryRecord[]> {
    const w = new Where();
    const f = q.filter;
    if (f.kind === 'device') w.add('device_id = ?', f.deviceId);
    else if (f.kind === 'tag') w.add(`device_id IN (SELECT id FROM devices WHERE ${HAS_TAG})`, tagPattern(f.tag));
    else w.raw(`schema_id IN (${f.schemaIds.map((id) => w.next(id)).join(', ')})`);
    w.add('ts >= ?', fromMs).add('ts < ?', q.untilMs).add('received_at <= ?', q.receivedUntilMs);
    position(w);
    const rows = await this.db.all<ExportRow>(`SELECT ${COLUMNS} FROM telemetry ${w} ORDER BY device_id, ts, msg_id LIMIT ${w.next(limit)}`, w.params);
    return rows.map((r) => ({
      deviceId: r.device_id,
      msgId: r.msg_id,
      schemaId: r.schema_id,
      seq: num(r.seq),
      boot: r.boot,
      deviceTs: num(r.device_ts),
      receivedAt: Number(r.received_at),
      ts: Number(r.ts),
      skewMs: num(r.skew_ms),
      data: JSON.parse(r.data) as Record<string, unknown>,
    }));
  }
}
