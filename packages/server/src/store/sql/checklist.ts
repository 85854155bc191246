import type { ChecklistRepository, CrlAge, DevicePostureFindings, DeviceRef, DeviceTakeovers, ExpiringCertificate, ServiceAccountScopes } from '../../checklist/index.js';
import type { PostureFinding } from '../../health/index.js';
import type { SqlClient } from '../sql-client.js';

/** Live devices: what the checks look at (retired and decommissioned ones are out of the fleet). */
const LIVE = "d.state IN ('provisioned', 'active', 'suspended')";

/** Read-only queries over several contexts' tables for `bulwark audit`: counts, and a bounded sample as evidence. */
export class SqlChecklistRepository implements ChecklistRepository {
  constructor(private readonly db: SqlClient) {}

  /** How many rows `from` (a FROM … WHERE clause on `param`) selects, and the first `limit` of them by `order`. */
  async #countAndSample<R extends object>(columns: string, from: string, order: string, param: number, limit: number): Promise<{ count: number; rows: R[] }> {
    const [count, rows] = await Promise.all([this.db.get<{ n: number | string }>(`SELECT COUNT(*) AS n ${from}`, [param]), this.db.all<R>(`SELECT ${columns} ${from} ORDER BY ${order} LIMIT ${Math.trunc(limit)}`, [param])]);
    return { count: Number(count?.n ?? 0), rows };
  }

  async expiringCertificates(before: number, limit: number): Promise<{ count: number; sample: ExpiringCertificate[] }> {
    const where = `FROM device_certificates c JOIN devices d ON d.id = c.device_id
      WHERE c.revoked_at IS NULL AND c.superseded_at IS NULL AND c.not_after < $1 AND ${LIVE}`;
    const { count, rows } = await this.#countAndSample<{ device_id: string; serial: string; not_after: number | string }>('c.device_id, c.serial, c.not_after', where, 'c.not_after', before, limit);
    return { count, sample: rows.map((r) => ({ deviceId: r.device_id, serial: r.serial, notAfter: Number(r.not_after) })) };
  }

  async belowSecurityVersion(floor: number, limit: number): Promise<{ count: number; sample: DeviceRef[] }> {
    const where = `FROM devices d WHERE ${LIVE} AND d.security_version IS NOT NULL AND d.security_version < $1`;
    const { count, rows } = await this.#countAndSample<{ id: string; security_version: number | string }>('d.id, d.security_version', where, 'd.security_version, d.id', floor, limit);
    return { count, sample: rows.map((r) => ({ deviceId: r.id, detail: `security version ${Number(r.security_version)}` })) };
  }

  async rolloutsWithExpiredFirmware(now: number): Promise<{ rolloutId: string; name: string; artifact: string; expiresAt: number }[]> {
    const rows = await this.db.all<{ id: string; name: string; fw: string; version: string; expires_at: number | string }>(
      `SELECT r.id, r.name, f.name AS fw, f.version, f.expires_at FROM rollouts r JOIN firmware_artifacts f ON f.id = r.artifact_id
       WHERE r.state IN ('running', 'paused') AND f.expires_at <= $1 ORDER BY r.created_at`,
      [now],
    );
    return rows.map((r) => ({ rolloutId: r.id, name: r.name, artifact: `${r.fw} ${r.version}`, expiresAt: Number(r.expires_at) }));
  }

  async serviceAccounts(): Promise<ServiceAccountScopes[]> {
    const rows = await this.db.all<{ id: string; name: string; scopes: string }>("SELECT id, name, scopes FROM principals WHERE kind = 'service' AND disabled_at IS NULL ORDER BY name");
    return rows.map((r) => ({ id: r.id, name: r.name, scopes: JSON.parse(r.scopes) as string[] }));
  }

  async staleDevices(seenBefore: number, limit: number): Promise<{ count: number; sample: DeviceRef[] }> {
    // Active devices silent since then, and devices made before then that never connected.
    const where = `FROM devices d WHERE ${LIVE} AND d.state <> 'suspended' AND (
      (d.last_seen_at IS NOT NULL AND d.last_seen_at < $1) OR (d.last_seen_at IS NULL AND d.created_at < $1))`;
    const { count, rows } = await this.#countAndSample<{ id: string; last_seen_at: number | string | null }>('d.id, d.last_seen_at', where, 'd.last_seen_at, d.id', seenBefore, limit);
    return {
      count,
      sample: rows.map((r) => ({ deviceId: r.id, detail: r.last_seen_at === null ? 'never seen' : `last seen ${new Date(Number(r.last_seen_at)).toISOString()}` })),
    };
  }

  async lastAudited(action: string): Promise<number | undefined> {
    const row = await this.db.get<{ ts: number | string | null }>("SELECT MAX(ts) AS ts FROM audit_log WHERE action = $1 AND result = 'ok'", [action]);
    return row?.ts === null || row?.ts === undefined ? undefined : Number(row.ts);
  }

  async firstAudited(): Promise<number | undefined> {
    const row = await this.db.get<{ ts: number | string | null }>('SELECT MIN(ts) AS ts FROM audit_log');
    return row?.ts === null || row?.ts === undefined ? undefined : Number(row.ts);
  }

  async crlAges(caIds: readonly string[]): Promise<CrlAge[]> {
    if (caIds.length === 0) return [];
    const rows = await this.db.all<{ ca_id: string; updated_at: number | string }>(`SELECT ca_id, updated_at FROM crl_state WHERE ca_id IN (${caIds.map((_, i) => `$${i + 1}`).join(', ')}) ORDER BY ca_id`, caIds);
    const signed = new Map(rows.map((r) => [r.ca_id, Number(r.updated_at)]));
    return caIds.map((caId) => ({ caId, updatedAt: signed.get(caId) ?? null }));
  }

  async postureFindings(limit: number): Promise<{ fail: number; warn: number; sample: DevicePostureFindings[] }> {
    const from = `FROM device_posture p JOIN devices d ON d.id = p.device_id WHERE ${LIVE} AND p.worst IN ('fail', 'warn')`;
    const [counts, rows] = await Promise.all([
      this.db.all<{ worst: string; n: number | string }>(`SELECT p.worst, COUNT(*) AS n ${from} GROUP BY p.worst`),
      // Failing devices first (fail sorts before warn), then by id.
      this.db.all<{ device_id: string; reported_at: number | string; findings: string }>(`SELECT p.device_id, p.reported_at, p.findings ${from} ORDER BY p.worst, p.device_id LIMIT ${Math.trunc(limit)}`),
    ]);
    const n = (w: string) => Number(counts.find((c) => c.worst === w)?.n ?? 0);
    return { fail: n('fail'), warn: n('warn'), sample: rows.map((r) => ({ deviceId: r.device_id, reportedAt: Number(r.reported_at), findings: JSON.parse(r.findings) as PostureFinding[] })) };
  }

  async takeovers(since: number, min: number): Promise<DeviceTakeovers[]> {
    const rows = await this.db.all<{ device_id: string; from_address: string; to_address: string }>(
      `SELECT device_id, from_address, to_address FROM session_takeovers
       WHERE at >= $1 AND device_id IN (SELECT device_id FROM session_takeovers WHERE at >= $1 GROUP BY device_id HAVING COUNT(*) >= $2)
       ORDER BY device_id, at LIMIT 10000`,
      [since, min],
    );
    const by = new Map<string, { count: number; addresses: Set<string> }>();
    for (const r of rows) {
      const d = by.get(r.device_id) ?? { count: 0, addresses: new Set<string>() };
      d.count += 1;
      d.addresses.add(r.from_address).add(r.to_address);
      by.set(r.device_id, d);
    }
    return [...by].map(([deviceId, d]) => ({ deviceId, count: d.count, addresses: [...d.addresses].sort() }));
  }
}
