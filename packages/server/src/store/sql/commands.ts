import type { CommandFilter, CommandRecord, CommandRepository, CommandState } from '../../diagnostics/index.js';
import type { SqlClient } from '../sql-client.js';
import { fromJson, num, toJson } from './json.js';
import { Where } from './where.js';

interface CommandRow {
  device_id: string;
  id: string;
  name: string;
  params: string;
  status: string;
  issued_by: string;
  issued_at: number;
  expires_at: number;
  sent_at: number | null;
  send_count: number;
  answered_at: number | null;
  reason: string | null;
  detail: string | null;
  output: string | null;
  updated_at: number;
}

const toCommand = (r: CommandRow): CommandRecord => ({
  id: r.id,
  deviceId: r.device_id,
  name: r.name,
  params: fromJson<Record<string, unknown>>(r.params) ?? {},
  status: r.status as CommandState,
  issuedBy: r.issued_by,
  issuedAt: Number(r.issued_at),
  expiresAt: Number(r.expires_at),
  sentAt: num(r.sent_at),
  sendCount: Number(r.send_count),
  answeredAt: num(r.answered_at),
  reason: r.reason,
  detail: r.detail,
  output: r.output === null ? null : fromJson<unknown>(r.output),
  updatedAt: Number(r.updated_at),
});

const ENDED = "('succeeded', 'failed', 'rejected')";

export class SqlCommandRepository implements CommandRepository {
  constructor(private readonly db: SqlClient) {}

  async insert(c: CommandRecord): Promise<void> {
    await this.db.run(
      `INSERT INTO device_commands (device_id, id, name, params, status, issued_by, issued_at, expires_at, sent_at, send_count, answered_at, reason, detail, output, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
      [c.deviceId, c.id, c.name, toJson(c.params), c.status, c.issuedBy, c.issuedAt, c.expiresAt, c.sentAt, c.sendCount, c.answeredAt, c.reason, c.detail, c.output === null || c.output === undefined ? null : toJson(c.output), c.updatedAt],
    );
  }

  async get(deviceId: string, id: string): Promise<CommandRecord | undefined> {
    const row = await this.db.get<CommandRow>('SELECT * FROM device_commands WHERE device_id = $1 AND id = $2', [deviceId, id]);
    return row && toCommand(row);
  }

  async list(f: CommandFilter): Promise<CommandRecord[]> {
    const w = new Where().add('device_id = ?', f.deviceId).add('status = ?', f.status).add('name = ?', f.name);
    const rows = await this.db.all<CommandRow>(`SELECT * FROM device_commands ${w} ORDER BY issued_at DESC, id DESC LIMIT ${w.next(f.limit)}`, w.params);
    return rows.map(toCommand);
  }

  async listOpen(deviceId: string, now: number, limit: number): Promise<CommandRecord[]> {
    const rows = await this.db.all<CommandRow>("SELECT * FROM device_commands WHERE device_id = $1 AND status IN ('pending', 'sent') AND expires_at > $2 ORDER BY issued_at, id LIMIT $3", [deviceId, now, limit]);
    return rows.map(toCommand);
  }

  async countOpen(deviceId: string, now: number): Promise<number> {
    const row = await this.db.get<{ n: number }>("SELECT COUNT(*) AS n FROM device_commands WHERE device_id = $1 AND status IN ('pending', 'sent', 'accepted') AND expires_at > $2", [deviceId, now]);
    return Number(row?.n ?? 0);
  }

  async markSent(deviceId: string, id: string, at: number): Promise<void> {
    await this.db.run("UPDATE device_commands SET status = CASE WHEN status = 'pending' THEN 'sent' ELSE status END, sent_at = $3, send_count = send_count + 1, updated_at = $3 WHERE device_id = $1 AND id = $2", [deviceId, id, at]);
  }

  async answer(deviceId: string, id: string, a: { status: CommandState; reason: string | null; detail: string | null; output: unknown; at: number }): Promise<boolean> {
    const changed = await this.db.run(
      `UPDATE device_commands SET status = $3, reason = $4, detail = $5, output = $6, answered_at = $7, updated_at = $7
        WHERE device_id = $1 AND id = $2 AND status NOT IN ${ENDED}`,
      [deviceId, id, a.status, a.reason, a.detail, a.output === undefined || a.output === null ? null : toJson(a.output), a.at],
    );
    return changed === 1;
  }

  cancelOpen(deviceId: string, reason: string, at: number): Promise<number> {
    return this.db.run("UPDATE device_commands SET status = 'expired', reason = $2, updated_at = $3 WHERE device_id = $1 AND status IN ('pending', 'sent', 'accepted')", [deviceId, reason, at]);
  }

  async expire(now: number, acceptedGraceMs: number): Promise<number> {
    const [open, accepted] = await Promise.all([
      this.db.run("UPDATE device_commands SET status = 'expired', reason = 'not_delivered', updated_at = $1 WHERE status IN ('pending', 'sent') AND expires_at <= $1", [now]),
      this.db.run("UPDATE device_commands SET status = 'expired', reason = 'no_result', updated_at = $1 WHERE status = 'accepted' AND expires_at <= $2", [now, now - acceptedGraceMs]),
    ]);
    return open + accepted;
  }

  async deleteEndedBefore(before: number): Promise<number> {
    return this.db.run(`DELETE FROM device_commands WHERE (status IN ${ENDED} OR status = 'expired') AND updated_at < $1`, [before]);
  }
}
