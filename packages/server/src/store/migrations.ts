import type { SqlEngine } from './sql-client.js';
import { INTEGRATION_MIGRATIONS } from './migrations-integrations.js';
import { ALERT_MIGRATIONS } from './migrations-alerts.js';
import { FLEET_MIGRATIONS } from './migrations-fleet.js';
import { TRACING_MIGRATIONS } from './migrations-tracing.js';

/**
 * Schema migrations, applied in order and recorded in `schema_migrations`. Where the two
 * engines need different text a migration carries both; otherwise one script serves both.
 * A migration is never edited once it has shipped: add a new one.
 */
export interface Migration {
  readonly id: number;
  readonly name: string;
  /**
   * One script (split on ';'), or one per engine. An engine's script may instead be a list of
   * statements run as they are: for bodies that hold ';' themselves (triggers, functions).
   */
  readonly sql: string | Readonly<Record<SqlEngine, string | readonly string[]>>;
}

/** Every context's migrations (each context keeps its own list), in id order. */
export const MIGRATIONS: readonly Migration[] = [
  {
    id: 1,
    name: 'access, audit and secrets',
    sql: `
      CREATE TABLE principals (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('user', 'service')),
        name TEXT NOT NULL UNIQUE,
        role TEXT,
        scopes TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        disabled_at BIGINT
      );
      CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        principal_id TEXT NOT NULL REFERENCES principals(id),
        name TEXT NOT NULL,
        secret_hash TEXT NOT NULL,
        scopes TEXT,
        created_at BIGINT NOT NULL,
        expires_at BIGINT,
        revoked_at BIGINT,
        last_used_at BIGINT
      );
      CREATE INDEX api_keys_principal ON api_keys (principal_id);
      CREATE TABLE audit_log (
        seq BIGINT PRIMARY KEY,
        ts BIGINT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT,
        result TEXT NOT NULL,
        request_id TEXT,
        source TEXT,
        details TEXT,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
      );
      CREATE INDEX audit_log_ts ON audit_log (ts);
      CREATE TABLE audit_head (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        seq BIGINT NOT NULL,
        hash TEXT NOT NULL
      );
      INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
      CREATE TABLE data_keys (
        id TEXT PRIMARY KEY,
        wrapped TEXT NOT NULL,
        master_key_id TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        retired_at BIGINT
      );
      CREATE TABLE secrets (
        name TEXT PRIMARY KEY,
        data_key_id TEXT NOT NULL REFERENCES data_keys(id),
        sealed TEXT NOT NULL,
        updated_at BIGINT NOT NULL
      );
    `,
  },
  {
    id: 2,
    name: 'device registry and identity',
    sql: `
      CREATE TABLE devices (
        id TEXT PRIMARY KEY,
        serial TEXT,
        model TEXT,
        hardware_revision TEXT,
        firmware_version TEXT,
        security_version BIGINT,
        owner TEXT,
        location TEXT,
        tags TEXT NOT NULL,
        state TEXT NOT NULL,
        suspended_from TEXT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        online_since BIGINT,
        last_seen_at BIGINT,
        connect_count BIGINT NOT NULL DEFAULT 0,
        last_disconnect_at BIGINT,
        last_disconnect_reason TEXT
      );
      CREATE INDEX devices_state ON devices (state);
      CREATE INDEX devices_model ON devices (model);
      CREATE TABLE pki_cas (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('root', 'issuing', 'manufacturer')),
        name TEXT NOT NULL,
        cert_pem TEXT NOT NULL,
        fingerprint TEXT NOT NULL UNIQUE,
        provisioning TEXT,
        crl_pem TEXT,
        created_at BIGINT NOT NULL,
        disabled_at BIGINT
      );
      CREATE TABLE device_certificates (
        serial TEXT PRIMARY KEY,
        device_id TEXT NOT NULL REFERENCES devices(id),
        ca_id TEXT NOT NULL REFERENCES pki_cas(id),
        fingerprint TEXT NOT NULL UNIQUE,
        not_before BIGINT NOT NULL,
        not_after BIGINT NOT NULL,
        pem TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        first_used_at BIGINT,
        superseded_at BIGINT,
        revoked_at BIGINT,
        revocation_reason TEXT
      );
      CREATE INDEX device_certificates_device ON device_certificates (device_id);
      CREATE TABLE claim_tokens (
        id TEXT PRIMARY KEY,
        secret_hash TEXT NOT NULL,
        device_id TEXT NOT NULL REFERENCES devices(id),
        batch_id TEXT,
        expires_at BIGINT NOT NULL,
        used_at BIGINT,
        created_at BIGINT NOT NULL,
        created_by TEXT NOT NULL
      );
      CREATE INDEX claim_tokens_device ON claim_tokens (device_id);
      CREATE TABLE crl_state (
        ca_id TEXT PRIMARY KEY REFERENCES pki_cas(id),
        crl_number BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
      );
    `,
  },
  {
    id: 3,
    name: 'telemetry schemas',
    sql: `
      CREATE TABLE telemetry_schemas (
        name TEXT NOT NULL,
        version BIGINT NOT NULL,
        document TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        created_by TEXT NOT NULL,
        PRIMARY KEY (name, version)
      );
    `,
  },
  {
    id: 4,
    name: 'telemetry and dead letters',
    sql: `
      CREATE TABLE telemetry (
        device_id TEXT NOT NULL,
        msg_id TEXT NOT NULL,
        schema_id TEXT NOT NULL,
        seq BIGINT,
        boot TEXT,
        device_ts BIGINT,
        received_at BIGINT NOT NULL,
        ts BIGINT NOT NULL,
        skew_ms BIGINT,
        data TEXT NOT NULL,
        PRIMARY KEY (device_id, msg_id)
      );
      CREATE INDEX telemetry_device_ts ON telemetry (device_id, ts);
      CREATE TABLE dead_letters (
        id TEXT PRIMARY KEY,
        device_id TEXT NOT NULL,
        transport TEXT NOT NULL,
        topic TEXT,
        received_at BIGINT NOT NULL,
        reason TEXT NOT NULL,
        problems TEXT NOT NULL,
        schema_id TEXT,
        msg_id TEXT,
        payload TEXT NOT NULL,
        replayed_at BIGINT,
        replay_result TEXT
      );
      CREATE INDEX dead_letters_device ON dead_letters (device_id, received_at);
    `,
  },
  {
    id: 5,
    name: 'telemetry rollups',
    sql: `
      CREATE TABLE telemetry_rollups (
        device_id TEXT NOT NULL,
        schema_id TEXT NOT NULL,
        field TEXT NOT NULL,
        bucket_ms BIGINT NOT NULL,
        bucket_start BIGINT NOT NULL,
        count BIGINT NOT NULL,
        sum DOUBLE PRECISION NOT NULL,
        min DOUBLE PRECISION NOT NULL,
        max DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (device_id, field, bucket_ms, bucket_start, schema_id)
      );
    `,
  },
  {
    id: 6,
    name: 'device twins, commands, health and events',
    sql: `
      CREATE TABLE device_twins (
        device_id TEXT PRIMARY KEY,
        desired_version BIGINT NOT NULL,
        desired_config TEXT,
        desired_at BIGINT,
        desired_by TEXT,
        reported_version BIGINT,
        reported_status TEXT,
        reported_config TEXT,
        reported_reason TEXT,
        reported_detail TEXT,
        reported_device_ts BIGINT,
        reported_at BIGINT,
        drift_since BIGINT
      );
      CREATE INDEX device_twins_drift ON device_twins (drift_since);
      CREATE TABLE device_commands (
        device_id TEXT NOT NULL,
        id TEXT NOT NULL,
        name TEXT NOT NULL,
        params TEXT NOT NULL,
        status TEXT NOT NULL,
        issued_by TEXT NOT NULL,
        issued_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        sent_at BIGINT,
        send_count BIGINT NOT NULL,
        answered_at BIGINT,
        reason TEXT,
        detail TEXT,
        output TEXT,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (device_id, id)
      );
      CREATE INDEX device_commands_status ON device_commands (status, expires_at);
      CREATE INDEX device_commands_issued ON device_commands (device_id, issued_at);
      CREATE TABLE device_health (
        device_id TEXT NOT NULL,
        received_at BIGINT NOT NULL,
        report TEXT NOT NULL
      );
      CREATE INDEX device_health_device ON device_health (device_id, received_at);
      CREATE INDEX device_health_received ON device_health (received_at);
      CREATE TABLE device_events (
        device_id TEXT NOT NULL,
        id TEXT NOT NULL,
        type TEXT NOT NULL,
        ts BIGINT NOT NULL,
        received_at BIGINT NOT NULL,
        data TEXT,
        PRIMARY KEY (device_id, id)
      );
      CREATE INDEX device_events_device ON device_events (device_id, received_at);
      CREATE INDEX device_events_received ON device_events (received_at);
    `,
  },
  {
    id: 7,
    name: 'firmware artifacts and rollouts',
    sql: `
      CREATE TABLE firmware_artifacts (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        version TEXT NOT NULL,
        security_version BIGINT NOT NULL,
        model TEXT NOT NULL,
        hardware_revisions TEXT NOT NULL,
        size BIGINT NOT NULL,
        sha256 TEXT NOT NULL,
        expires_at BIGINT NOT NULL,
        state TEXT NOT NULL,
        manifest TEXT NOT NULL,
        uploaded_by TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        published_at BIGINT,
        UNIQUE (name, version)
      );
      CREATE INDEX firmware_artifacts_sha256 ON firmware_artifacts (sha256);
      CREATE TABLE rollouts (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        artifact_id TEXT NOT NULL REFERENCES firmware_artifacts(id),
        target TEXT NOT NULL,
        strategy TEXT NOT NULL,
        gates TEXT NOT NULL,
        maintenance_window TEXT,
        max_retries BIGINT NOT NULL,
        state TEXT NOT NULL,
        reason TEXT,
        current_wave BIGINT NOT NULL,
        wave_count BIGINT NOT NULL,
        history TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
      );
      CREATE INDEX rollouts_state ON rollouts (state, created_at);
      CREATE TABLE rollout_devices (
        rollout_id TEXT NOT NULL REFERENCES rollouts(id),
        device_id TEXT NOT NULL,
        wave BIGINT NOT NULL,
        state TEXT NOT NULL,
        job_id TEXT UNIQUE,
        attempts BIGINT NOT NULL,
        from_version TEXT,
        reason TEXT,
        notified_at BIGINT,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (rollout_id, device_id)
      );
      CREATE INDEX rollout_devices_wave ON rollout_devices (rollout_id, wave, state);
      CREATE INDEX rollout_devices_device ON rollout_devices (device_id, state);
      CREATE INDEX devices_security_version ON devices (security_version);
    `,
  },
  {
    id: 8,
    // NULL protection marks a letter stored in clear before this migration: the server seals
    // those whole when it starts (IngestService.protectClearDeadLetters), and lists them
    // masked until then.
    name: 'dead letters protected at rest',
    sql: `
      ALTER TABLE dead_letters ADD COLUMN protection TEXT;
      CREATE INDEX dead_letters_clear ON dead_letters (received_at) WHERE protection IS NULL
    `,
  },
  {
    id: 9,
    // The node that holds a device's session (cluster mode): a starting node, or the nodes
    // that outlive a dead one, mark offline only the devices of that node. NULL: connected
    // through a version without the column (any node may clean it).
    name: 'session owner per device',
    sql: `
      ALTER TABLE devices ADD COLUMN online_node TEXT;
      CREATE INDEX devices_online_node ON devices (online_node) WHERE online_node IS NOT NULL
    `,
  },
  {
    id: 10,
    // Cluster mode keeps firmware images in PostgreSQL, in fixed-size chunks, so that every
    // node can serve them (docs/decisions/0016). PostgreSQL only: embedded mode keeps its
    // images as files, and SQLite records the migration without running anything.
    // STORAGE EXTERNAL: images are compressed already; PostgreSQL stores them out of line
    // without trying to compress them again.
    name: 'firmware images in the shared store',
    sql: {
      postgres: `
        CREATE TABLE firmware_image_chunks (
          artifact_id TEXT NOT NULL REFERENCES firmware_artifacts(id) ON DELETE CASCADE,
          idx BIGINT NOT NULL,
          data BYTEA NOT NULL,
          PRIMARY KEY (artifact_id, idx)
        );
        ALTER TABLE firmware_image_chunks ALTER COLUMN data SET STORAGE EXTERNAL
      `,
      sqlite: '',
    },
  },
  ...INTEGRATION_MIGRATIONS,
  ...ALERT_MIGRATIONS,
  ...FLEET_MIGRATIONS,
  ...TRACING_MIGRATIONS,
].sort((a, b) => a.id - b.id);

export function migrationSql(m: Migration, engine: SqlEngine): string | readonly string[] {
  return typeof m.sql === 'string' ? m.sql : m.sql[engine];
}
