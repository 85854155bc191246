import type { DesiredState, ReportedState, TwinRecord, TwinRepository } from '../../twin/index.js';
import type { SqlClient } from '../sql-client.js';
import { fromJson, num, toJson } from './json.js';

interface TwinRow {
  device_id: string;
  desired_version: number;
  desired_config: string | null;
  desired_at: number | null;
  desired_by: string | null;
  reported_version: number | null;
  reported_status: string | null;
  reported_config: string | null;
  reported_reason: string | null;
  reported_detail: string | null;
  reported_device_ts: number | null;
  reported_at: number | null;
  drift_since: number | null;
}

const toTwin = (r: TwinRow): TwinRecord => ({
  deviceId: r.device_id,
  desired: Number(r.desired_version) > 0 ? { version: Number(r.desired_version), config: fromJson<Record<string, unknown>>(r.desired_config) ?? {}, updatedAt: Number(r.desired_at), updatedBy: r.desired_by ?? '' } : null,
  reported:
    r.reported_at !== null
      ? {
          version: Number(r.reported_version),
          status: r.reported_status as ReportedState['status'],
          config: fromJson<Record<string, unknown>>(r.reported_config) ?? {},
          reason: r.reported_reason,
          detail: r.reported_detail,
          deviceTs: num(r.reported_device_ts),
          receivedAt: Number(r.reported_at),
        }
      : null,
  driftSince: num(r.drift_since),
});

/** One row per device: the desired state (compare-and-set on its version), the last report and the drift start. */
export class SqlTwinRepository implements TwinRepository {
  constructor(private readonly db: SqlClient) {}

  async get(deviceId: string): Promise<TwinRecord | undefined> {
    const row = await this.db.get<TwinRow>('SELECT * FROM device_twins WHERE device_id = $1', [deviceId]);
    return row && toTwin(row);
  }

  async #ensure(deviceId: string): Promise<void> {
    await this.db.run('INSERT INTO device_twins (device_id, desired_version) VALUES ($1, 0) ON CONFLICT (device_id) DO NOTHING', [deviceId]);
  }

  async putDesired(deviceId: string, expectVersion: number, d: DesiredState): Promise<boolean> {
    await this.#ensure(deviceId);
    const changed = await this.db.run('UPDATE device_twins SET desired_version = $3, desired_config = $4, desired_at = $5, desired_by = $6 WHERE device_id = $1 AND desired_version = $2', [
      deviceId,
      expectVersion,
      d.version,
      toJson(d.config),
      d.updatedAt,
      d.updatedBy,
    ]);
    return changed === 1;
  }

  async putReported(deviceId: string, r: ReportedState): Promise<void> {
    await this.#ensure(deviceId);
    await this.db.run(
      `UPDATE device_twins SET reported_version = $2, reported_status = $3, reported_config = $4, reported_reason = $5, reported_detail = $6,
        reported_device_ts = $7, reported_at = $8 WHERE device_id = $1`,
      [deviceId, r.version, r.status, toJson(r.config), r.reason, r.detail, r.deviceTs, r.receivedAt],
    );
  }

  async setDriftSince(deviceId: string, driftSince: number | null): Promise<void> {
    await this.db.run('UPDATE device_twins SET drift_since = $2 WHERE device_id = $1', [deviceId, driftSince]);
  }

  async listDrifting(atOrBefore: number, limit: number): Promise<TwinRecord[]> {
    const rows = await this.db.all<TwinRow>('SELECT * FROM device_twins WHERE drift_since IS NOT NULL AND drift_since <= $1 ORDER BY drift_since, device_id LIMIT $2', [atOrBefore, limit]);
    return rows.map(toTwin);
  }
}
