import type { Migration } from './migrations.js';

/**
 * Migrations of fleet operations; MIGRATIONS lists them after the alerting context's, in id
 * order.
 */

/**
 * The fleet's count dimensions as migration 17 defines them: a name, and the value a device
 * row `r` counts under (NULL: not counted in that dimension). Decommissioned devices count
 * only by state. Frozen with the migration: a change is a new migration that replaces the
 * triggers and recounts.
 */
const live = (r: string, value: string) => `CASE WHEN ${r}.state = 'decommissioned' THEN NULL ELSE ${value} END`;
const DIMENSIONS: readonly (readonly [string, (r: string) => string])[] = [
  ['state', (r) => `${r}.state`],
  ['connectivity', (r) => live(r, `CASE WHEN ${r}.online_since IS NULL THEN 'offline' ELSE 'online' END`)],
  ['model', (r) => live(r, `COALESCE(${r}.model, '')`)],
  ['firmware', (r) => live(r, `COALESCE(${r}.firmware_version, '')`)],
  ['health', (r) => live(r, `CASE WHEN ${r}.health_score >= 80 THEN 'good' WHEN ${r}.health_score >= 50 THEN 'fair' ELSE 'poor' END`)],
  ['alerts', (r) => live(r, `${r}.alert_state`)],
];

/** One row per dimension for the row `r` (a table alias, or NEW / OLD in a SQLite trigger), each with `sign`. */
const dimensionRows = (r: string, sign: 1 | -1, from = ''): string => DIMENSIONS.map(([dim, value]) => `SELECT '${dim}' AS dim, ${value(r)} AS value, ${sign} AS d${from}`).join(' UNION ALL ');

/**
 * The fleet counts of the devices a WHERE clause selects, counted now by one scan of them (a
 * caller limited to device groups: its groups are a small part of the fleet). The same
 * dimensions as the kept counts.
 */
export const countByScan = (where: string): string => `SELECT dim, value, SUM(d) AS n FROM (${dimensionRows('dv', 1, ` FROM devices dv ${where}`)}) x WHERE value IS NOT NULL GROUP BY dim, value`;

/** Inserts the net change of `rows` (a UNION of dimension rows) into the deltas, leaving out what cancels. */
const insertDeltas = (rows: string): string => `INSERT INTO device_count_deltas (dim, value, delta) SELECT dim, value, SUM(d) FROM (${rows}) x WHERE value IS NOT NULL GROUP BY dim, value HAVING SUM(d) <> 0`;

/** A SQLite update trigger runs only when a column some dimension reads changed. */
const COUNTED_COLUMNS_CHANGED = [
  'NEW.state IS NOT OLD.state',
  '(NEW.online_since IS NULL) IS NOT (OLD.online_since IS NULL)',
  'NEW.model IS NOT OLD.model',
  'NEW.firmware_version IS NOT OLD.firmware_version',
  'NEW.health_score IS NOT OLD.health_score',
  'NEW.alert_state IS NOT OLD.alert_state',
].join(' OR ');

const TABLES = [
  `ALTER TABLE devices ADD COLUMN alert_state TEXT NOT NULL DEFAULT 'none'`,
  `UPDATE devices SET alert_state = CASE WHEN EXISTS (SELECT 1 FROM alerts a WHERE a.device_id = devices.id AND a.resolved_at IS NULL AND a.acknowledged_at IS NULL)
     THEN 'firing' ELSE 'acknowledged' END
   WHERE id IN (SELECT device_id FROM alerts WHERE resolved_at IS NULL)`,
  'CREATE TABLE device_counts (dim TEXT NOT NULL, value TEXT NOT NULL, n BIGINT NOT NULL, PRIMARY KEY (dim, value))',
  'CREATE TABLE device_count_deltas (dim TEXT NOT NULL, value TEXT NOT NULL, delta BIGINT NOT NULL)',
  `INSERT INTO device_counts (dim, value, n) SELECT dim, value, SUM(d) FROM (${DIMENSIONS.map(([dim, value]) => `SELECT '${dim}' AS dim, ${value('r')} AS value, 1 AS d FROM devices r`).join(' UNION ALL ')}) x
     WHERE value IS NOT NULL GROUP BY dim, value`,
  // The dashboard's "offline for over an hour" list: offline devices by when they were last seen.
  'CREATE INDEX devices_offline_seen ON devices (last_seen_at) WHERE online_since IS NULL',
];

/** PostgreSQL: one trigger call per statement over its transition tables (a bulk update is one delta insert). */
const pgTrigger = (op: 'INSERT' | 'UPDATE' | 'DELETE'): string[] => {
  const name = `device_counts_${op.toLowerCase()}`;
  const rows = [...(op === 'DELETE' ? [] : [dimensionRows('r', 1, ' FROM new_rows r')]), ...(op === 'INSERT' ? [] : [dimensionRows('r', -1, ' FROM old_rows r')])].join(' UNION ALL ');
  const tables = [op === 'DELETE' ? '' : 'NEW TABLE AS new_rows', op === 'INSERT' ? '' : 'OLD TABLE AS old_rows'].filter(Boolean).join(' ');
  return [
    `CREATE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      ${insertDeltas(rows)};
      RETURN NULL;
    END
    $$`,
    `CREATE TRIGGER ${name} AFTER ${op} ON devices REFERENCING ${tables} FOR EACH STATEMENT EXECUTE FUNCTION ${name}()`,
  ];
};

export const FLEET_MIGRATIONS: readonly Migration[] = [
  {
    id: 17,
    // Fleet counts kept as devices change (docs/decisions/0022): triggers on devices append the
    // net change of each statement or row to device_count_deltas; a job folds the deltas into
    // device_counts every registry.countsFoldIntervalMs, and a read sums both, so a count is
    // never stale and never scans the devices table. Each device also keeps its alert state
    // (firing, acknowledged or none), written with its health score.
    name: 'fleet counts kept as devices change',
    sql: {
      sqlite: [
        ...TABLES,
        `CREATE TRIGGER device_counts_insert AFTER INSERT ON devices BEGIN ${insertDeltas(dimensionRows('NEW', 1))}; END`,
        `CREATE TRIGGER device_counts_update AFTER UPDATE ON devices WHEN ${COUNTED_COLUMNS_CHANGED}
         BEGIN ${insertDeltas(`${dimensionRows('NEW', 1)} UNION ALL ${dimensionRows('OLD', -1)}`)}; END`,
        `CREATE TRIGGER device_counts_delete AFTER DELETE ON devices BEGIN ${insertDeltas(dimensionRows('OLD', -1))}; END`,
      ],
      postgres: [...TABLES, ...pgTrigger('INSERT'), ...pgTrigger('UPDATE'), ...pgTrigger('DELETE')],
    },
  },
  {
    id: 18,
    // Device groups: explicit members (static) or a saved query over the registry (dynamic,
    // evaluated when used). A group's id is its name.
    name: 'device groups',
    sql: `
      CREATE TABLE device_groups (
        id TEXT PRIMARY KEY,
        description TEXT,
        kind TEXT NOT NULL CHECK (kind IN ('static', 'dynamic')),
        query TEXT,
        created_by TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
      );
      CREATE TABLE device_group_members (
        group_id TEXT NOT NULL REFERENCES device_groups(id) ON DELETE CASCADE,
        device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
        added_at BIGINT NOT NULL,
        PRIMARY KEY (group_id, device_id)
      );
      CREATE INDEX device_group_members_device ON device_group_members (device_id)
    `,
  },
  {
    id: 19,
    // Jobs over groups: one operation applied to a snapshot of a group's members, paced, with
    // one entry per device (docs/guides/fleet.md).
    name: 'jobs over device groups',
    sql: `
      CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        operation TEXT NOT NULL,
        group_id TEXT NOT NULL,
        pacing TEXT NOT NULL,
        device_timeout_ms BIGINT NOT NULL,
        max_retries INTEGER NOT NULL,
        abort_rule TEXT,
        state TEXT NOT NULL,
        reason TEXT,
        device_count INTEGER NOT NULL,
        skipped TEXT NOT NULL,
        history TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        settled_at BIGINT
      );
      CREATE INDEX jobs_open ON jobs (settled_at, state);
      CREATE TABLE job_devices (
        job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        device_id TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        ref TEXT,
        reason TEXT,
        detail TEXT,
        dispatched_at BIGINT,
        finished_at BIGINT,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (job_id, device_id)
      );
      CREATE INDEX job_devices_state ON job_devices (job_id, state, device_id);
      CREATE INDEX job_devices_device ON job_devices (device_id, state)
    `,
  },
  {
    id: 20,
    // Least privilege per group: a principal may be limited to device groups (JSON array of
    // group ids; NULL is the whole fleet).
    name: 'principals limited to device groups',
    sql: 'ALTER TABLE principals ADD COLUMN device_groups TEXT',
  },
  {
    id: 21,
    // Issuing-CA rollover counts and lists certificates by CA (the CA listing, every CRL
    // re-signing): an index instead of a scan of every certificate.
    name: 'device certificates by issuing CA',
    sql: 'CREATE INDEX device_certificates_ca ON device_certificates (ca_id, not_after)',
  },
  {
    id: 26,
    // The session directory's claim of the session a device row last recorded (cluster mode;
    // 0 in embedded mode): a connect older than it is refused and a disconnect must name it, so
    // that connectivity follows the newest session whatever order the nodes' writes land in.
    name: 'session claim per device',
    sql: 'ALTER TABLE devices ADD COLUMN online_claim BIGINT NOT NULL DEFAULT 0',
  },
];
