import type { Span, TraceRecord, TraceRepository } from '../../tracing/index.js';
import type { SqlClient } from '../sql-client.js';

interface TraceRow {
  trace_id: string;
  device_id: string;
  msg_id: string | null;
  node: string;
  spans: string;
}

const toRecord = (r: TraceRow): TraceRecord => ({ traceId: r.trace_id, deviceId: r.device_id, msgId: r.msg_id, node: r.node, spans: JSON.parse(r.spans) as Span[] });

export class SqlTraceRepository implements TraceRepository {
  constructor(private readonly db: SqlClient) {}

  async insertBatch(records: readonly TraceRecord[], recordedAt: number): Promise<void> {
    if (records.length === 0) return;
    await this.db.runMany(
      'INSERT INTO message_traces (trace_id, device_id, msg_id, node, recorded_at, spans) VALUES ($1, $2, $3, $4, $5, $6)',
      records.map((r) => [r.traceId, r.deviceId, r.msgId, r.node, recordedAt, JSON.stringify(r.spans)]),
    );
  }

  async forMessage(deviceId: string, msgId: string): Promise<TraceRecord[]> {
    const rows = await this.db.all<TraceRow>('SELECT trace_id, device_id, msg_id, node, spans FROM message_traces WHERE device_id = $1 AND msg_id = $2 ORDER BY recorded_at', [deviceId, msgId]);
    return rows.map(toRecord);
  }

  deleteBefore(before: number): Promise<number> {
    return this.db.run('DELETE FROM message_traces WHERE recorded_at < $1', [before]);
  }
}
