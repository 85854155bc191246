import type { Job, JobAbortRule, JobDevice, JobDeviceEnd, JobDeviceState, JobEvent, JobOperation, JobPacing, JobRepository, JobState, LiveJobDevice } from '../../jobs/index.js';
import type { SqlClient } from '../sql-client.js';
import { fromJson, num, toJson } from './json.js';
import { Where, numberedParams } from './where.js';

interface JobRow {
  id: string;
  name: string;
  operation: string;
  group_id: string;
  pacing: string;
  device_timeout_ms: number;
  max_retries: number;
  abort_rule: string | null;
  state: string;
  reason: string | null;
  device_count: number;
  skipped: string;
  history: string;
  created_by: string;
  created_at: number;
  updated_at: number;
  settled_at: number | null;
}
interface DeviceRow {
  job_id: string;
  device_id: string;
  state: string;
  attempts: number;
  ref: string | null;
  reason: string | null;
  detail: string | null;
  dispatched_at: number | null;
  finished_at: number | null;
  updated_at: number;
}

const toJob = (r: JobRow): Job => ({
  id: r.id,
  name: r.name,
  operation: fromJson<JobOperation>(r.operation) as JobOperation,
  group: r.group_id,
  pacing: fromJson<JobPacing>(r.pacing) as JobPacing,
  deviceTimeoutMs: Number(r.device_timeout_ms),
  maxRetries: Number(r.max_retries),
  abort: fromJson<JobAbortRule>(r.abort_rule),
  state: r.state as JobState,
  reason: r.reason,
  deviceCount: Number(r.device_count),
  skipped: fromJson<Record<string, number>>(r.skipped) ?? {},
  history: fromJson<JobEvent[]>(r.history) ?? [],
  createdBy: r.created_by,
  createdAt: Number(r.created_at),
  updatedAt: Number(r.updated_at),
  settledAt: num(r.settled_at),
});

const toDevice = (r: DeviceRow): JobDevice => ({
  jobId: r.job_id,
  deviceId: r.device_id,
  state: r.state as JobDeviceState,
  attempts: Number(r.attempts),
  ref: r.ref,
  reason: r.reason,
  detail: r.detail,
  dispatchedAt: num(r.dispatched_at),
  finishedAt: num(r.finished_at),
  updatedAt: Number(r.updated_at),
});

const INSERT_DEVICE = "INSERT INTO job_devices (job_id, device_id, state, attempts, updated_at) VALUES ($1, $2, 'queued', 0, $3)";
const LIVE_JOB = "('running', 'paused')";

export class SqlJobRepository implements JobRepository {
  constructor(private readonly db: SqlClient) {}

  insert(job: Job, deviceIds: readonly string[]): Promise<void> {
    return this.db.transaction(async (tx) => {
      await tx.run(
        `INSERT INTO jobs (id, name, operation, group_id, pacing, device_timeout_ms, max_retries, abort_rule, state, reason, device_count, skipped, history, created_by, created_at, updated_at, settled_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
        [
          job.id,
          job.name,
          toJson(job.operation),
          job.group,
          toJson(job.pacing),
          job.deviceTimeoutMs,
          job.maxRetries,
          job.abort === null ? null : toJson(job.abort),
          job.state,
          job.reason,
          job.deviceCount,
          toJson(job.skipped),
          toJson(job.history),
          job.createdBy,
          job.createdAt,
          job.updatedAt,
          job.settledAt,
        ],
      );
      for (let i = 0; i < deviceIds.length; i += 1000)
        await tx.runMany(
          INSERT_DEVICE,
          deviceIds.slice(i, i + 1000).map((d) => [job.id, d, job.createdAt]),
        );
    });
  }

  async get(id: string): Promise<Job | undefined> {
    const row = await this.db.get<JobRow>('SELECT * FROM jobs WHERE id = $1', [id]);
    return row && toJob(row);
  }

  async list(f: { readonly states?: readonly JobState[]; readonly before?: string; readonly groups?: readonly string[]; readonly limit: number }): Promise<Job[]> {
    // Newest first; `before` is the last id of the previous page (ids are random: paged by creation time, then id).
    const w = new Where().add('(created_at, id) < (SELECT created_at, id FROM jobs WHERE id = ?)', f.before);
    if (f.states && f.states.length > 0) w.addAll(`state IN (${f.states.map(() => '?').join(', ')})`, f.states);
    if (f.groups) {
      if (f.groups.length === 0) w.raw('1 = 0');
      else w.addAll(`group_id IN (${f.groups.map(() => '?').join(', ')})`, f.groups);
    }
    return (await this.db.all<JobRow>(`SELECT * FROM jobs ${w} ORDER BY created_at DESC, id DESC LIMIT ${w.next(f.limit)}`, w.params)).map(toJob);
  }

  async unsettled(limit: number): Promise<Job[]> {
    return (await this.db.all<JobRow>('SELECT * FROM jobs WHERE settled_at IS NULL ORDER BY created_at, id LIMIT $1', [limit])).map(toJob);
  }

  async update(job: Job, expectedUpdatedAt: number): Promise<boolean> {
    const changed = await this.db.run('UPDATE jobs SET state = $2, reason = $3, history = $4, updated_at = $5, settled_at = $7 WHERE id = $1 AND updated_at = $6', [
      job.id,
      job.state,
      job.reason,
      toJson(job.history),
      job.updatedAt,
      expectedUpdatedAt,
      job.settledAt,
    ]);
    return changed === 1;
  }

  async claim(jobId: string, limit: number, at: number): Promise<JobDevice[]> {
    if (limit <= 0) return [];
    // One statement: two engines (or two nodes) claiming at once never get the same entry.
    const rows = await this.db.all<DeviceRow>(
      `UPDATE job_devices SET state = 'in_progress', attempts = attempts + 1, dispatched_at = $2, updated_at = $2, ref = NULL
        WHERE job_id = $1 AND state = 'queued' AND device_id IN (
          SELECT device_id FROM job_devices WHERE job_id = $1 AND state = 'queued' ORDER BY device_id LIMIT $3)
        RETURNING *`,
      [jobId, at, limit],
    );
    return rows.map(toDevice).sort((a, b) => (a.deviceId < b.deviceId ? -1 : 1));
  }

  async requeue(jobId: string, deviceIds: readonly string[]): Promise<void> {
    if (deviceIds.length === 0) return;
    await this.db.run(`UPDATE job_devices SET state = 'queued', attempts = attempts - 1, dispatched_at = NULL WHERE job_id = $1 AND state = 'in_progress' AND device_id IN (${numberedParams(deviceIds.length, 2)})`, [jobId, ...deviceIds]);
  }

  async setRef(jobId: string, deviceId: string, ref: string): Promise<void> {
    await this.db.run("UPDATE job_devices SET ref = $3 WHERE job_id = $1 AND device_id = $2 AND state = 'in_progress'", [jobId, deviceId, ref]);
  }

  async finish(jobId: string, deviceId: string, from: readonly JobDeviceState[], end: JobDeviceEnd): Promise<boolean> {
    const changed = await this.db.run(
      `UPDATE job_devices SET state = $3, reason = $4, detail = $5, finished_at = $6, updated_at = $6
        WHERE job_id = $1 AND device_id = $2 AND state IN (${numberedParams(from.length, 7)})`,
      [jobId, deviceId, end.state, end.reason, end.detail, end.at, ...from],
    );
    return changed === 1;
  }

  async expire(jobId: string, before: number, maxAttempts: number, at: number): Promise<{ retried: number; timedOut: number }> {
    const stale = "job_id = $1 AND state = 'in_progress' AND dispatched_at < $2";
    return this.db.transaction(async (tx) => {
      const timedOut = await tx.run(`UPDATE job_devices SET state = 'timed_out', reason = 'no_answer', detail = NULL, finished_at = $3, updated_at = $3 WHERE ${stale} AND attempts >= $4`, [jobId, before, at, maxAttempts]);
      const retried = await tx.run(`UPDATE job_devices SET state = 'queued', reason = 'no_answer', updated_at = $3 WHERE ${stale}`, [jobId, before, at]);
      return { retried, timedOut };
    });
  }

  cancelQueued(jobId: string, reason: string, at: number): Promise<number> {
    return this.db.run("UPDATE job_devices SET state = 'cancelled', reason = $2, finished_at = $3, updated_at = $3 WHERE job_id = $1 AND state = 'queued'", [jobId, reason, at]);
  }

  async counts(jobId: string): Promise<Partial<Record<JobDeviceState, number>>> {
    const rows = await this.db.all<{ state: string; n: number }>('SELECT state, COUNT(*) AS n FROM job_devices WHERE job_id = $1 GROUP BY state', [jobId]);
    return Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
  }

  async reasons(jobId: string, limit: number): Promise<{ state: JobDeviceState; reason: string; count: number }[]> {
    const rows = await this.db.all<{ state: string; reason: string | null; n: number }>(
      `SELECT state, reason, COUNT(*) AS n FROM job_devices WHERE job_id = $1 AND state IN ('failed', 'timed_out', 'cancelled')
        GROUP BY state, reason ORDER BY COUNT(*) DESC, state, reason LIMIT $2`,
      [jobId, limit],
    );
    return rows.map((r) => ({ state: r.state as JobDeviceState, reason: r.reason ?? 'unknown', count: Number(r.n) }));
  }

  async devices(jobId: string, f: { readonly states?: readonly JobDeviceState[]; readonly after?: string; readonly limit: number }): Promise<JobDevice[]> {
    const w = new Where().add('job_id = ?', jobId).add('device_id > ?', f.after);
    if (f.states && f.states.length > 0) w.addAll(`state IN (${f.states.map(() => '?').join(', ')})`, f.states);
    return (await this.db.all<DeviceRow>(`SELECT * FROM job_devices ${w} ORDER BY device_id LIMIT ${w.next(f.limit)}`, w.params)).map(toDevice);
  }

  async live(deviceId: string): Promise<LiveJobDevice[]> {
    const rows = await this.db.all<DeviceRow & { operation: string }>(
      `SELECT d.*, j.operation FROM job_devices d JOIN jobs j ON j.id = d.job_id
        WHERE d.device_id = $1 AND (d.state = 'in_progress' OR (d.state = 'queued' AND j.state IN ${LIVE_JOB})) ORDER BY d.job_id`,
      [deviceId],
    );
    return rows.map((r) => ({ ...toDevice(r), operation: (fromJson<JobOperation>(r.operation) as JobOperation).type }));
  }
}
