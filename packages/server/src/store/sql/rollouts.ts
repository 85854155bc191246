import type { DeviceJobState, Rollout, RolloutDevice, RolloutRepository, RolloutState, WaveCounts } from '../../ota/index.js';
import type { SqlClient, SqlValue } from '../sql-client.js';
import { fromJson, num, toJson } from './json.js';
import { numberedParams } from './where.js';

interface RolloutRow {
  id: string;
  name: string;
  artifact_id: string;
  target: string;
  strategy: string;
  gates: string;
  maintenance_window: string | null;
  max_retries: number;
  state: string;
  reason: string | null;
  current_wave: number;
  wave_count: number;
  history: string;
  created_by: string;
  created_at: number;
  updated_at: number;
}

interface DeviceRow {
  rollout_id: string;
  device_id: string;
  wave: number;
  state: string;
  job_id: string | null;
  attempts: number;
  from_version: string | null;
  reason: string | null;
  notified_at: number | null;
  updated_at: number;
}

const toRollout = (r: RolloutRow): Rollout => ({
  id: r.id,
  name: r.name,
  artifactId: r.artifact_id,
  target: fromJson(r.target) ?? {},
  strategy: fromJson(r.strategy) ?? { waves: [] },
  gates: fromJson(r.gates) ?? { minDevices: 1, onFailure: 'pause' },
  window: fromJson(r.maintenance_window),
  maxRetries: Number(r.max_retries),
  state: r.state as RolloutState,
  reason: r.reason,
  currentWave: Number(r.current_wave),
  waveCount: Number(r.wave_count),
  history: fromJson(r.history) ?? [],
  createdBy: r.created_by,
  createdAt: Number(r.created_at),
  updatedAt: Number(r.updated_at),
});

const toDevice = (r: DeviceRow): RolloutDevice => ({
  rolloutId: r.rollout_id,
  deviceId: r.device_id,
  wave: Number(r.wave),
  state: r.state as DeviceJobState,
  jobId: r.job_id,
  attempts: Number(r.attempts),
  fromVersion: r.from_version,
  reason: r.reason,
  notifiedAt: num(r.notified_at),
  updatedAt: Number(r.updated_at),
});

const TERMINAL = "('committed', 'rolled-back', 'failed')";
const INSERT_DEVICE = `INSERT INTO rollout_devices (rollout_id, device_id, wave, state, job_id, attempts, from_version, reason, notified_at, updated_at)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`;
const deviceParams = (d: RolloutDevice): SqlValue[] => [d.rolloutId, d.deviceId, d.wave, d.state, d.jobId, d.attempts, d.fromVersion, d.reason, d.notifiedAt, d.updatedAt];

/** Rollouts, and one row per targeted device with its wave and job state. */
export class SqlRolloutRepository implements RolloutRepository {
  constructor(private readonly db: SqlClient) {}

  async insert(r: Rollout, devices: readonly RolloutDevice[]): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.run(
        `INSERT INTO rollouts (id, name, artifact_id, target, strategy, gates, maintenance_window, max_retries, state, reason, current_wave, wave_count, history, created_by, created_at, updated_at)
          VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
        [r.id, r.name, r.artifactId, toJson(r.target), toJson(r.strategy), toJson(r.gates), r.window ? toJson(r.window) : null, r.maxRetries, r.state, r.reason, r.currentWave, r.waveCount, toJson(r.history), r.createdBy, r.createdAt, r.updatedAt],
      );
      for (let i = 0; i < devices.length; i += 500) await tx.runMany(INSERT_DEVICE, devices.slice(i, i + 500).map(deviceParams));
    });
  }

  async get(id: string): Promise<Rollout | undefined> {
    const row = await this.db.get<RolloutRow>('SELECT * FROM rollouts WHERE id = $1', [id]);
    return row && toRollout(row);
  }

  async list(limit: number, state?: RolloutState): Promise<Rollout[]> {
    const rows =
      state === undefined
        ? await this.db.all<RolloutRow>('SELECT * FROM rollouts ORDER BY created_at DESC, id DESC LIMIT $1', [limit])
        : await this.db.all<RolloutRow>('SELECT * FROM rollouts WHERE state = $2 ORDER BY created_at DESC, id DESC LIMIT $1', [limit, state]);
    return rows.map(toRollout);
  }

  async update(r: Rollout, expectUpdatedAt: number): Promise<boolean> {
    const changed = await this.db.run('UPDATE rollouts SET state = $2, reason = $3, current_wave = $4, history = $5, updated_at = $6 WHERE id = $1 AND updated_at = $7', [r.id, r.state, r.reason, r.currentWave, toJson(r.history), r.updatedAt, expectUpdatedAt]);
    return changed === 1;
  }

  async counts(rolloutId: string): Promise<WaveCounts[]> {
    const rows = await this.db.all<{ wave: number; state: string; n: number }>('SELECT wave, state, COUNT(*) AS n FROM rollout_devices WHERE rollout_id = $1 GROUP BY wave, state ORDER BY wave', [rolloutId]);
    const byWave = new Map<number, Record<string, number>>();
    for (const r of rows) {
      const w = byWave.get(Number(r.wave)) ?? {};
      w[r.state] = Number(r.n);
      byWave.set(Number(r.wave), w);
    }
    return [...byWave].map(([wave, byState]) => ({ wave, byState }));
  }

  async devices(rolloutId: string, f: { wave?: number; states?: readonly DeviceJobState[]; limit: number }): Promise<RolloutDevice[]> {
    const params: SqlValue[] = [rolloutId, f.limit];
    let where = 'rollout_id = $1';
    if (f.wave !== undefined) {
      params.push(f.wave);
      where += ` AND wave = $${params.length}`;
    }
    if (f.states) {
      if (f.states.length === 0) return [];
      where += ` AND state IN (${numberedParams(f.states.length, params.length + 1)})`;
      params.push(...f.states);
    }
    return (await this.db.all<DeviceRow>(`SELECT * FROM rollout_devices WHERE ${where} ORDER BY wave, device_id LIMIT $2`, params)).map(toDevice);
  }

  async deviceByJob(jobId: string): Promise<RolloutDevice | undefined> {
    const row = await this.db.get<DeviceRow>('SELECT * FROM rollout_devices WHERE job_id = $1', [jobId]);
    return row && toDevice(row);
  }

  async updateDevice(d: RolloutDevice, from: readonly DeviceJobState[], fromJobId: string | null): Promise<boolean> {
    const params: SqlValue[] = [d.rolloutId, d.deviceId, d.state, d.jobId, d.attempts, d.reason, d.notifiedAt, d.updatedAt];
    const jobClause = fromJobId === null ? 'job_id IS NULL' : `job_id = $${params.push(fromJobId)}`;
    const states = numberedParams(from.length, params.length + 1);
    params.push(...from);
    const changed = await this.db.run(
      `UPDATE rollout_devices SET state = $3, job_id = $4, attempts = $5, reason = $6, notified_at = $7, updated_at = $8
        WHERE rollout_id = $1 AND device_id = $2 AND ${jobClause} AND state IN (${states})`,
      params,
    );
    return changed === 1;
  }

  async stale(rolloutId: string, before: number, limit: number): Promise<RolloutDevice[]> {
    const rows = await this.db.all<DeviceRow>(`SELECT * FROM rollout_devices WHERE rollout_id = $1 AND state NOT IN ('pending', 'committed', 'rolled-back', 'failed') AND updated_at <= $2 ORDER BY updated_at LIMIT $3`, [rolloutId, before, limit]);
    return rows.map(toDevice);
  }

  async lastCommitAt(rolloutId: string, wave: number): Promise<number | null> {
    const row = await this.db.get<{ at: number | null }>("SELECT MAX(updated_at) AS at FROM rollout_devices WHERE rollout_id = $1 AND wave = $2 AND state = 'committed'", [rolloutId, wave]);
    return num(row?.at ?? null);
  }

  async liveJobs(deviceId: string): Promise<RolloutDevice[]> {
    const rows = await this.db.all<DeviceRow>(`SELECT * FROM rollout_devices WHERE device_id = $1 AND job_id IS NOT NULL AND state NOT IN ${TERMINAL} ORDER BY updated_at DESC LIMIT 10`, [deviceId]);
    return rows.map(toDevice);
  }

  async activeJob(deviceId: string, artifactId: string): Promise<RolloutDevice | undefined> {
    const row = await this.db.get<DeviceRow>(
      `SELECT d.* FROM rollout_devices d JOIN rollouts r ON r.id = d.rollout_id
        WHERE d.device_id = $1 AND r.artifact_id = $2 AND d.job_id IS NOT NULL AND d.state NOT IN ${TERMINAL} ORDER BY d.updated_at DESC LIMIT 1`,
      [deviceId, artifactId],
    );
    return row && toDevice(row);
  }
}
