import type { Alert, Grouping, Incident, Outgoing, Transition, TransitionResult } from '../../alerts/index.js';
import type { SqlExecutor } from '../sql-client.js';
import { type AlertRow, type IncidentRow, toAlert, toIncident } from './alert-rows.js';

/**
 * The alert transitions inside a transaction: the alert row, its incident and its
 * notifications change together (docs/decisions/0021).
 */

/** Puts a new alert into its rule's open incident, if there is one. */
async function joinOpenIncident(tx: SqlExecutor, a: Alert): Promise<boolean> {
  const open = await tx.get<{ id: string }>('SELECT id FROM alert_incidents WHERE rule_id = $1 AND closed_at IS NULL', [a.ruleId]);
  if (!open) return false;
  await tx.run('UPDATE alerts SET incident_id = $2 WHERE id = $1', [a.id, open.id]);
  await tx.run('UPDATE alert_incidents SET alert_count = alert_count + 1 WHERE id = $1', [open.id]);
  return true;
}

/** Notifications to send from `sendAt` on; created now (their order per channel). */
async function queue(tx: SqlExecutor, alertId: string, outgoing: readonly Outgoing[], sendAt: number, createdAt: number): Promise<void> {
  if (outgoing.length === 0) return;
  await tx.runMany(
    `INSERT INTO alert_notifications (id, alert_id, channel_id, event, body, attempts, next_attempt_at, last_error, created_at, delivered_at)
     VALUES ($1, $2, $3, $4, $5, 0, $6, NULL, $7, NULL)`,
    outgoing.map((o) => [o.id, alertId, o.channelId, o.event, o.body, sendAt, createdAt]),
  );
}

/** Penalty of each open alert on its device's health score. */
const PENALTY = "CASE severity WHEN 'critical' THEN 40 WHEN 'warning' THEN 15 ELSE 5 END";

/** The device's health score from its open alerts (a subject that is no device, `rollout:…`, matches no row). */
async function rescore(tx: SqlExecutor, deviceId: string): Promise<void> {
  await tx.run(
    `UPDATE devices SET health_score = (SELECT CASE WHEN COALESCE(SUM(${PENALTY}), 0) >= 100 THEN 0 ELSE 100 - COALESCE(SUM(${PENALTY}), 0) END
       FROM alerts WHERE device_id = $1 AND resolved_at IS NULL) WHERE id = $1`,
    [deviceId],
  );
}

/** Fires `a` unless an alert of its rule and device is open; groups it into an incident when its rule has enough recent ones. */
export async function fireIn(tx: SqlExecutor, a: Alert, outgoing: readonly Outgoing[], at: number, g: Grouping): Promise<'fired' | 'grouped' | 'open'> {
  const inserted = await tx.run(
    `INSERT INTO alerts (id, rule_id, device_id, type, severity, summary, details, fired_at, acknowledged_at, acknowledged_by, resolved_at, silenced_at, incident_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, NULL, $9, NULL) ON CONFLICT DO NOTHING`,
    [a.id, a.ruleId, a.deviceId, a.type, a.severity, a.summary, JSON.stringify(a.details), a.firedAt, a.silenced ? at : null],
  );
  if (inserted === 0) return 'open';
  await rescore(tx, a.deviceId);
  if (await joinOpenIncident(tx, a)) return 'grouped';
  const recent = Number((await tx.get<{ n: number }>(
    'SELECT COUNT(*) AS n FROM alerts WHERE rule_id = $1 AND resolved_at IS NULL AND incident_id IS NULL AND fired_at >= $2', [a.ruleId, at - g.windowMs],
  ))?.n ?? 0);
  if (recent < g.minAlerts) {
    await queue(tx, a.id, outgoing, g.sendAt, at);
    return 'fired';
  }
  const made = await tx.run(
    'INSERT INTO alert_incidents (id, rule_id, opened_at, closed_at, alert_count) VALUES ($1, $2, $3, NULL, $4) ON CONFLICT DO NOTHING', [g.newIncidentId, a.ruleId, at, recent],
  );
  // Another node made it meanwhile: join that one.
  if (made === 0) return (await joinOpenIncident(tx, a)) ? 'grouped' : 'fired';
  await tx.run('UPDATE alerts SET incident_id = $1 WHERE rule_id = $2 AND resolved_at IS NULL AND incident_id IS NULL AND fired_at >= $3', [g.newIncidentId, a.ruleId, at - g.windowMs]);
  // What the gathered alerts have not sent yet, the incident says once.
  await tx.run(`DELETE FROM alert_notifications WHERE delivered_at IS NULL AND event = 'fired' AND alert_id IN (SELECT id FROM alerts WHERE incident_id = $1)`, [g.newIncidentId]);
  await queue(tx, g.newIncidentId, g.opened({ id: g.newIncidentId, ruleId: a.ruleId, openedAt: at, closedAt: null, alerts: recent }), at, at);
  return 'grouped';
}

/**
 * Resolves an open alert with the notifications `outgoing` makes for it (none for an alert in
 * an incident: the incident's `closed` ones go out when its last alert resolves).
 */
export async function resolveIn(
  tx: SqlExecutor, id: string, at: number, outgoing: () => readonly Outgoing[], closed: (incident: Incident) => readonly Outgoing[],
  known?: { readonly incident_id: string | null; readonly device_id: string },
): Promise<boolean> {
  if ((await tx.run('UPDATE alerts SET resolved_at = $2 WHERE id = $1 AND resolved_at IS NULL', [id, at])) === 0) return false;
  // The caller that read the alert already knows its incident and device.
  const row = known ?? await tx.get<{ incident_id: string | null; device_id: string }>('SELECT incident_id, device_id FROM alerts WHERE id = $1', [id]);
  if (row) await rescore(tx, row.device_id);
  const incidentId = row?.incident_id ?? null;
  if (incidentId === null) {
    await queue(tx, id, outgoing(), at, at);
    return true;
  }
  const left = Number((await tx.get<{ n: number }>('SELECT COUNT(*) AS n FROM alerts WHERE incident_id = $1 AND resolved_at IS NULL', [incidentId]))?.n ?? 0);
  if (left === 0 && (await tx.run('UPDATE alert_incidents SET closed_at = $2 WHERE id = $1 AND closed_at IS NULL', [incidentId, at])) > 0) {
    const incident = await tx.get<IncidentRow>('SELECT * FROM alert_incidents WHERE id = $1', [incidentId]);
    if (incident) await queue(tx, incidentId, closed(toIncident(incident)), at, at);
  }
  return true;
}

export async function applyIn(tx: SqlExecutor, t: Transition): Promise<TransitionResult> {
  if (t.kind === 'fire') return fireIn(tx, t.alert, t.outgoing, t.at, t.grouping);
  const row = await tx.get<AlertRow>('SELECT * FROM alerts WHERE rule_id = $1 AND device_id = $2 AND resolved_at IS NULL', [t.ruleId, t.deviceId]);
  if (!row) return 'none';
  const open = toAlert(row);
  return (await resolveIn(tx, open.id, t.at, () => t.outgoing(open), t.closed, row)) ? { resolved: open } : 'none';
}
