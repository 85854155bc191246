import { type EventFilter, type EventRecord, type EventRepository, type HealthRecord, type HealthReport, type HealthRepository, type PostureFinding, type PostureRecord, worstOf } from '../../health/index.js';
import type { SqlClient } from '../sql-client.js';
import { fromJson, toJson } from './json.js';
import { Where } from './where.js';

interface HealthRow {
  device_id: string;
  received_at: number;
  report: string;
}
interface PostureRow {
  device_id: string;
  reported_at: number | string;
  posture: string;
  findings: string;
}
interface EventRow {
  device_id: string;
  id: string;
  type: string;
  ts: number;
  received_at: number;
  data: string | null;
}

const toHealth = (r: HealthRow): HealthRecord => ({ deviceId: r.device_id, receivedAt: Number(r.received_at), report: fromJson<HealthReport>(r.report) as HealthReport });
const toEvent = (r: EventRow): EventRecord => ({
  deviceId: r.device_id,
  id: r.id,
  type: r.type,
  ts: Number(r.ts),
  receivedAt: Number(r.received_at),
  data: fromJson<Record<string, unknown>>(r.data),
});

export class SqlHealthRepository implements HealthRepository {
  constructor(private readonly db: SqlClient) {}

  async insert(r: HealthRecord, keep: number): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.run('INSERT INTO device_health (device_id, received_at, report) VALUES ($1, $2, $3)', [r.deviceId, r.receivedAt, toJson(r.report)]);
      // Everything older than the keep-th newest report of this device goes.
      await tx.run(
        `DELETE FROM device_health WHERE device_id = $1 AND received_at < (
          SELECT received_at FROM device_health WHERE device_id = $1 ORDER BY received_at DESC LIMIT 1 OFFSET $2)`,
        [r.deviceId, keep - 1],
      );
    });
  }

  async history(deviceId: string, limit: number): Promise<HealthRecord[]> {
    const rows = await this.db.all<HealthRow>('SELECT * FROM device_health WHERE device_id = $1 ORDER BY received_at DESC LIMIT $2', [deviceId, limit]);
    return rows.map(toHealth);
  }

  /** Reports older than `before` go, and postures reported before then with them. */
  async deleteBefore(before: number): Promise<number> {
    const n = await this.db.run('DELETE FROM device_health WHERE received_at < $1', [before]);
    await this.db.run('DELETE FROM device_posture WHERE reported_at < $1', [before]);
    return n;
  }

  async setPosture(r: PostureRecord): Promise<void> {
    await this.db.run(
      `INSERT INTO device_posture (device_id, reported_at, posture, findings, worst) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (device_id) DO UPDATE SET reported_at = excluded.reported_at, posture = excluded.posture, findings = excluded.findings, worst = excluded.worst
       WHERE device_posture.reported_at <= excluded.reported_at`,
      [r.deviceId, r.reportedAt, toJson(r.posture), toJson(r.findings), worstOf(r.findings)],
    );
  }

  async posture(deviceId: string): Promise<PostureRecord | null> {
    const row = await this.db.get<PostureRow>('SELECT device_id, reported_at, posture, findings FROM device_posture WHERE device_id = $1', [deviceId]);
    if (!row) return null;
    return { deviceId: row.device_id, reportedAt: Number(row.reported_at), posture: fromJson(row.posture) as PostureRecord['posture'], findings: fromJson<PostureFinding[]>(row.findings) ?? [] };
  }
}

export class SqlEventRepository implements EventRepository {
  constructor(private readonly db: SqlClient) {}

  async insert(e: EventRecord): Promise<boolean> {
    const changed = await this.db.run('INSERT INTO device_events (device_id, id, type, ts, received_at, data) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (device_id, id) DO NOTHING', [
      e.deviceId,
      e.id,
      e.type,
      e.ts,
      e.receivedAt,
      e.data === null ? null : toJson(e.data),
    ]);
    return changed === 1;
  }

  async list(f: EventFilter): Promise<EventRecord[]> {
    const w = new Where().add('device_id = ?', f.deviceId).add('type = ?', f.type).add('received_at >= ?', f.sinceMs);
    const rows = await this.db.all<EventRow>(`SELECT * FROM device_events ${w} ORDER BY received_at DESC, id DESC LIMIT ${w.next(f.limit)}`, w.params);
    return rows.map(toEvent);
  }

  deleteBefore(before: number): Promise<number> {
    return this.db.run('DELETE FROM device_events WHERE received_at < $1', [before]);
  }
}
