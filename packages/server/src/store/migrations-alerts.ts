import type { Migration } from './migrations.js';

/** Migrations of the alerting context (docs/decisions/0021); MIGRATIONS puts every context's in id order. */
export const ALERT_MIGRATIONS: readonly Migration[] = [
  {
    id: 14,
    // One open alert per rule and device: the partial unique index decides between nodes
    // racing to fire it. Notifications are an outbox written in the transition's transaction.
    name: "alert rules, alerts, incidents, silences, channels, the notification outbox and the devices' health score",
    sql: `
      CREATE TABLE alert_rules (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        severity TEXT NOT NULL,
        scope TEXT NOT NULL,
        condition TEXT NOT NULL,
        disabled_at BIGINT,
        origin TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
      );
      CREATE TABLE alerts (
        id TEXT PRIMARY KEY,
        rule_id TEXT NOT NULL,
        device_id TEXT NOT NULL,
        type TEXT NOT NULL,
        severity TEXT NOT NULL,
        summary TEXT NOT NULL,
        details TEXT NOT NULL,
        fired_at BIGINT NOT NULL,
        acknowledged_at BIGINT,
        acknowledged_by TEXT,
        resolved_at BIGINT,
        silenced_at BIGINT,
        incident_id TEXT
      );
      CREATE UNIQUE INDEX alerts_open ON alerts (rule_id, device_id) WHERE resolved_at IS NULL;
      CREATE INDEX alerts_fired ON alerts (fired_at);
      CREATE INDEX alerts_device ON alerts (device_id, fired_at);
      CREATE INDEX alerts_rule ON alerts (rule_id, fired_at);
      CREATE INDEX alerts_incident ON alerts (incident_id) WHERE incident_id IS NOT NULL;
      CREATE TABLE alert_incidents (
        id TEXT PRIMARY KEY,
        rule_id TEXT NOT NULL,
        opened_at BIGINT NOT NULL,
        closed_at BIGINT,
        alert_count BIGINT NOT NULL
      );
      CREATE UNIQUE INDEX alert_incidents_open ON alert_incidents (rule_id) WHERE closed_at IS NULL;
      CREATE INDEX alert_incidents_opened ON alert_incidents (opened_at);
      CREATE TABLE alert_silences (
        id TEXT PRIMARY KEY,
        rule_id TEXT,
        device_id TEXT,
        reason TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL
      );
      CREATE INDEX alert_silences_expiry ON alert_silences (expires_at);
      CREATE TABLE alert_channels (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        url TEXT NOT NULL,
        secret TEXT NOT NULL,
        min_severity TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at BIGINT NOT NULL
      );
      CREATE TABLE alert_notifications (
        id TEXT PRIMARY KEY,
        alert_id TEXT NOT NULL,
        channel_id TEXT NOT NULL,
        event TEXT NOT NULL,
        body TEXT NOT NULL,
        attempts BIGINT NOT NULL,
        next_attempt_at BIGINT NOT NULL,
        last_error TEXT,
        created_at BIGINT NOT NULL,
        delivered_at BIGINT
      );
      CREATE INDEX alert_notifications_pending ON alert_notifications (created_at) WHERE delivered_at IS NULL;
      ALTER TABLE devices ADD COLUMN health_score BIGINT NOT NULL DEFAULT 100;
      CREATE INDEX devices_health ON devices (health_score, id)
    `,
  },
  {
    id: 15,
    // The certificate-expiry sweep reads live certificates by end of validity.
    name: 'device certificates by expiry',
    sql: `
      CREATE INDEX device_certificates_expiry ON device_certificates (not_after) WHERE revoked_at IS NULL AND superseded_at IS NULL
    `,
  },
  {
    id: 16,
    // A webhook channel may take the notifications of one pass in one POST (1) instead of one each (0).
    name: 'alert channels that batch',
    sql: `
      ALTER TABLE alert_channels ADD COLUMN batch BIGINT NOT NULL DEFAULT 0
    `,
  },
  {
    id: 22,
    // What a transition reads is open alerts: a rule's recent ones not in an incident (does an
    // incident open?) and a device's (its health score and alert state). Indexes of just those:
    // through alerts_rule and alerts_device the reads walked every alert the rule fired in the
    // grouping window (15,000 at 50 a second over 5 minutes) and every alert the device ever had.
    // The columns of each index's condition are in it too: SQLite then reads the index alone
    // (and picks it over alerts_device) instead of looking up every row it names.
    name: 'open alerts by rule and by device',
    sql: `
      CREATE INDEX alerts_ungrouped ON alerts (rule_id, fired_at, resolved_at, incident_id) WHERE resolved_at IS NULL AND incident_id IS NULL;
      CREATE INDEX alerts_device_open ON alerts (device_id, resolved_at, severity, acknowledged_at) WHERE resolved_at IS NULL
    `,
  },
  {
    id: 23,
    // A session taken over from another address while the device was online: how a cloned
    // certificate shows (two holders of one identity pushing each other off). Kept for a week.
    name: 'session takeovers by address',
    sql: `
      ALTER TABLE devices ADD COLUMN last_address TEXT;
      CREATE TABLE session_takeovers (
        device_id TEXT NOT NULL,
        at BIGINT NOT NULL,
        from_address TEXT NOT NULL,
        to_address TEXT NOT NULL
      );
      CREATE INDEX session_takeovers_at ON session_takeovers (at, device_id)
    `,
  },
  {
    id: 24,
    // The newest posture each device reported (debug ports, SSH, serial console, verified
    // boot) with the findings it was judged to have; the checklist counts devices by `worst`.
    name: 'device posture',
    sql: `
      CREATE TABLE device_posture (
        device_id TEXT PRIMARY KEY,
        reported_at BIGINT NOT NULL,
        posture TEXT NOT NULL,
        findings TEXT NOT NULL,
        worst TEXT NOT NULL CHECK (worst IN ('ok', 'warn', 'fail'))
      );
      CREATE INDEX device_posture_worst ON device_posture (worst, device_id)
    `,
  },
];
