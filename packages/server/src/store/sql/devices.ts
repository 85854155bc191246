import type { ConnectivityEvent, CountRow, Device, DeviceAttributes, DeviceFilter, DeviceRepository, LifecycleState, GroupSelector } from '../../registry/index.js';
import type { BatchStatement, SqlClient, SqlValue } from '../sql-client.js';
import { fromJson, num, toJson } from './json.js';
import { countByScan } from '../migrations-fleet.js';
import { whereInGroup } from './group-query.js';
import { HAS_TAG, Where, tagPattern } from './where.js';

interface DeviceRow {
  id: string;
  serial: string | null;
  model: string | null;
  hardware_revision: string | null;
  firmware_version: string | null;
  security_version: number | null;
  owner: string | null;
  location: string | null;
  tags: string;
  state: string;
  suspended_from: string | null;
  created_at: number;
  updated_at: number;
  online_since: number | null;
  last_seen_at: number | null;
  connect_count: number;
  last_disconnect_at: number | null;
  last_disconnect_reason: string | null;
  health_score: number | null;
}

const toDevice = (r: DeviceRow): Device => ({
  id: r.id,
  serial: r.serial,
  model: r.model,
  hardwareRevision: r.hardware_revision,
  firmwareVersion: r.firmware_version,
  securityVersion: num(r.security_version),
  owner: r.owner,
  location: r.location,
  tags: fromJson<string[]>(r.tags) ?? [],
  state: r.state as LifecycleState,
  suspendedFrom: r.suspended_from as LifecycleState | null,
  createdAt: Number(r.created_at),
  updatedAt: Number(r.updated_at),
  connectivity: {
    online: r.online_since !== null,
    onlineSince: num(r.online_since),
    lastSeenAt: num(r.last_seen_at),
    connectCount: Number(r.connect_count),
    lastDisconnectAt: num(r.last_disconnect_at),
    lastDisconnectReason: r.last_disconnect_reason,
  },
  healthScore: r.health_score === null ? 100 : Number(r.health_score),
});

const ATTRIBUTE_COLUMNS: Readonly<Record<keyof DeviceAttributes, string>> = {
  serial: 'serial',
  model: 'model',
  hardwareRevision: 'hardware_revision',
  firmwareVersion: 'firmware_version',
  securityVersion: 'security_version',
  owner: 'owner',
  location: 'location',
  tags: 'tags',
};

const INSERT = `INSERT INTO devices (id, serial, model, hardware_revision, firmware_version, security_version, owner, location, tags,
  state, suspended_from, created_at, updated_at, online_since, last_seen_at, connect_count, last_disconnect_at, last_disconnect_reason)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, NULL, NULL, 0, NULL, NULL)`;

const insertParams = (d: Device): SqlValue[] => [d.id, d.serial, d.model, d.hardwareRevision, d.firmwareVersion, d.securityVersion, d.owner, d.location, toJson(d.tags), d.state, d.suspendedFrom, d.createdAt, d.updatedAt];

export class SqlDeviceRepository implements DeviceRepository {
  constructor(private readonly db: SqlClient) {}

  async insert(d: Device): Promise<void> {
    await this.db.run(INSERT, insertParams(d));
  }

  async insertMany(devices: readonly Device[]): Promise<void> {
    await this.db.transaction(async (tx) => {
      for (const d of devices) await tx.run(INSERT, insertParams(d));
    });
  }

  async get(id: string): Promise<Device | undefined> {
    const row = await this.db.get<DeviceRow>('SELECT * FROM devices WHERE id = $1', [id]);
    return row && toDevice(row);
  }

  async list(f: DeviceFilter): Promise<Device[]> {
    const w = new Where()
      .add('state = ?', f.state)
      .add('model = ?', f.model)
      .add('firmware_version = ?', f.firmwareVersion)
      .add('security_version = ?', f.securityVersion)
      .add('(security_version IS NULL OR security_version < ?)', f.securityVersionBelow)
      .add(HAS_TAG, f.tag === undefined ? undefined : tagPattern(f.tag))
      .add('id IN (SELECT device_id FROM device_twins WHERE drift_since IS NOT NULL AND drift_since <= ?)', f.driftedSince)
      .add('online_since IS NULL AND last_seen_at < ?', f.seenBefore);
    if (f.group) whereInGroup(w, f.group);
    if (f.within) w.anyOf(f.within.map((g) => (sub: Where) => void whereInGroup(sub, g)));
    const byHealth = f.sort === 'health';
    if (byHealth) w.addAll('(health_score > ? OR (health_score = ? AND id > ?))', f.afterHealth === undefined ? [undefined] : [f.afterHealth, f.afterHealth, f.after ?? '']);
    else w.add('id > ?', f.after);
    if (f.online !== undefined) w.raw(f.online ? 'online_since IS NOT NULL' : 'online_since IS NULL');
    const sql = `SELECT * FROM devices ${w} ORDER BY ${byHealth ? 'health_score, id' : 'id'} LIMIT ${w.next(f.limit)}`;
    return (await this.db.all<DeviceRow>(sql, w.params)).map(toDevice);
  }

  async counts(): Promise<CountRow[]> {
    const rows = await this.db.all<CountRow>(
      `SELECT dim, value, SUM(n) AS n FROM (SELECT dim, value, n FROM device_counts UNION ALL SELECT dim, value, delta AS n FROM device_count_deltas) x
       GROUP BY dim, value`,
    );
    return rows.map((r) => ({ dim: r.dim, value: r.value, n: Number(r.n) })).filter((r) => r.n !== 0);
  }

  async countsWithin(selectors: readonly GroupSelector[]): Promise<CountRow[]> {
    const w = new Where().anyOf(selectors.map((g) => (sub: Where) => void whereInGroup(sub, g)));
    const rows = await this.db.all<CountRow>(countByScan(String(w)), w.params);
    return rows.map((r) => ({ dim: r.dim, value: r.value, n: Number(r.n) })).filter((r) => r.n !== 0);
  }

  async foldCounts(): Promise<number> {
    if (!(await this.db.get('SELECT 1 AS one FROM device_count_deltas LIMIT 1'))) return 0;
    return this.db.transaction(async (tx) => {
      let folded: number;
      if (this.db.engine === 'postgres') {
        // Rows another node folds at the same time are deleted by one of the two only: each change counts once.
        const moved = await tx.get<{ rows: number | string | null }>(
          `WITH moved AS (DELETE FROM device_count_deltas RETURNING dim, value, delta),
                folded AS (INSERT INTO device_counts (dim, value, n) SELECT dim, value, SUM(delta) FROM moved GROUP BY dim, value
                           ON CONFLICT (dim, value) DO UPDATE SET n = device_counts.n + excluded.n)
           SELECT COUNT(*) AS rows FROM moved`,
        );
        folded = Number(moved?.rows ?? 0);
      } else {
        // SQLite has one writer: nothing is added between the sum and the delete.
        await tx.run(`INSERT INTO device_counts (dim, value, n) SELECT dim, value, SUM(delta) FROM device_count_deltas WHERE true GROUP BY dim, value
                      ON CONFLICT (dim, value) DO UPDATE SET n = device_counts.n + excluded.n`);
        folded = await tx.run('DELETE FROM device_count_deltas');
      }
      await tx.run('DELETE FROM device_counts WHERE n = 0');
      return folded;
    });
  }

  async updateAttributes(id: string, attrs: Partial<DeviceAttributes>, at: number): Promise<boolean> {
    const sets: string[] = [];
    const params: SqlValue[] = [id, at];
    for (const [key, column] of Object.entries(ATTRIBUTE_COLUMNS) as [keyof DeviceAttributes, string][]) {
      if (!(key in attrs)) continue;
      const value = attrs[key];
      params.push(key === 'tags' ? toJson(value) : ((value as SqlValue | undefined) ?? null));
      sets.push(`${column} = $${params.length}`);
    }
    return (await this.db.run(`UPDATE devices SET ${[...sets, 'updated_at = $2'].join(', ')} WHERE id = $1`, params)) === 1;
  }

  async transition(id: string, from: readonly LifecycleState[], to: LifecycleState, at: number, suspendedFrom: LifecycleState | null = null): Promise<boolean> {
    const placeholders = from.map((_, i) => `$${i + 5}`).join(', ');
    const changed = await this.db.run(`UPDATE devices SET state = $2, updated_at = $3, suspended_from = $4 WHERE id = $1 AND state IN (${placeholders})`, [id, to, at, suspendedFrom, ...from]);
    return changed === 1;
  }

  async recordConnectivity(events: readonly ConnectivityEvent[]): Promise<void> {
    // One statement per run of events of the same kind, so that a connect and a disconnect of one device keep their order.
    const statements: BatchStatement[] = [];
    const add = (sql: string, params: SqlValue[]) => {
      const last = statements.at(-1);
      if (last?.sql === sql) (last.paramsList as SqlValue[][]).push(params);
      else statements.push({ sql, paramsList: [params] });
    };
    // A run of connects: its takeovers first (each read before the connects record the new
    // addresses), then the connects, two statements however long the run (a reconnect storm).
    let connects: Extract<ConnectivityEvent, { kind: 'connect' }>[] = [];
    const flush = () => {
      for (const e of connects) if (e.address) add(TAKEOVER, [e.id, e.at, e.address, e.claim ?? 0]);
      for (const e of connects) add(CONNECT, [e.id, e.at, e.node, e.address ?? null, e.claim ?? 0]);
      connects = [];
    };
    for (const e of events) {
      if (e.kind === 'connect') connects.push(e);
      else {
        flush();
        add(DISCONNECT, [e.id, e.at, e.reason, e.node, e.claim ?? 0]);
      }
    }
    flush();
    const newest = events.reduce((m, e) => Math.max(m, e.at), 0);
    if (events.some((e) => e.kind === 'connect' && e.address)) add('DELETE FROM session_takeovers WHERE at < $1', [newest - TAKEOVER_KEEP_MS]);
    if (statements.length > 0) await this.db.batch(statements);
  }

  async markAllOffline(at: number, reason: string): Promise<number> {
    return this.db.transaction(async (tx) => {
      const marked = await tx.run('UPDATE devices SET online_since = NULL, last_disconnect_at = $1, last_disconnect_reason = $2, online_node = NULL WHERE online_since IS NOT NULL', [at, reason]);
      // Without a directory every claim is 0: one a cluster left in this database would refuse every connect.
      await tx.run('UPDATE devices SET online_claim = 0 WHERE online_claim <> 0');
      return marked;
    });
  }

  async markNodeOffline(node: string, at: number, reason: string, connectedBefore: number): Promise<number> {
    return this.db.run('UPDATE devices SET online_since = NULL, last_disconnect_at = $1, last_disconnect_reason = $2, online_node = NULL WHERE online_since IS NOT NULL AND online_since < $4 AND (online_node = $3 OR online_node IS NULL)', [
      at,
      reason,
      node,
      connectedBefore,
    ]);
  }

  async forgetClaimsAbove(claim: number): Promise<number> {
    return this.db.run('UPDATE devices SET online_claim = 0 WHERE online_claim > $1', [claim]);
  }
}

/*
 * Connectivity follows the newest session, in whatever order the nodes' writes land: each row
 * keeps the directory claim of the session it last recorded (`online_claim`; 0 in embedded
 * mode, where every connect and disconnect carries 0 and these rules are the node rules alone).
 *
 * A connect is refused when the row holds a newer claim: a slow admission on one node whose
 * connect lands after another node's connect of the same device (the device gave up and went
 * there) leaves the newer session in place. A refused connect changes nothing, connect_count
 * included: the session it records was taken over before it was recorded.
 *
 * The claim stays when the session ends (a disconnect, markNodeOffline): a late connect older
 * than a session that connected and ended since is refused too, rather than showing the device
 * online on a node whose session is already being taken over. A claim goes back to 0 only where
 * claims start again: markAllOffline (embedded start) and forgetClaimsAbove (a session directory
 * made anew); a stored 0 is "no claim known", and a disconnect of its node matches it as before.
 */
const CONNECT = 'UPDATE devices SET online_since = $2, last_seen_at = $2, connect_count = connect_count + 1, online_node = $3, last_address = COALESCE($4, last_address), online_claim = $5 WHERE id = $1 AND online_claim <= $5';
/** Before a connect is recorded: it takes the session over from another address while the device is online (a cloned certificate looks like this, repeatedly). A connect refused for an older claim takes nothing over. */
const TAKEOVER = `INSERT INTO session_takeovers (device_id, at, from_address, to_address)
  SELECT id, CAST($2 AS BIGINT), last_address, CAST($3 AS TEXT) FROM devices
  WHERE id = $1 AND online_since IS NOT NULL AND last_address IS NOT NULL AND last_address <> CAST($3 AS TEXT) AND online_claim <= $4`;
/** Takeovers are kept a week (the checklist looks at the last day). */
const TAKEOVER_KEEP_MS = 7 * 86_400_000;
// A node records the end only of the session the row names (its node and its claim): after a takeover by another node, or by a
// newer session whose connect landed first, the old session's late disconnect changes nothing.
const DISCONNECT = `UPDATE devices SET online_since = NULL, last_seen_at = $2, last_disconnect_at = $2, last_disconnect_reason = $3, online_node = NULL
  WHERE id = $1 AND (online_node = $4 OR online_node IS NULL) AND (online_claim = $5 OR online_claim = 0)`;
