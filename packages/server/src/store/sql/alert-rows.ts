import type { Alert, Incident, RuleKind, Severity } from '../../alerts/index.js';
import { num } from './json.js';

/** Rows of the alerts and alert_incidents tables, as both engines return them. */

export interface AlertRow {
  id: string;
  rule_id: string;
  device_id: string;
  type: string;
  severity: string;
  summary: string;
  details: string;
  fired_at: number;
  acknowledged_at: number | null;
  acknowledged_by: string | null;
  resolved_at: number | null;
  silenced_at: number | null;
  incident_id: string | null;
}
export interface IncidentRow {
  id: string;
  rule_id: string;
  opened_at: number;
  closed_at: number | null;
  alert_count: number;
}

export const toAlert = (r: AlertRow): Alert => ({
  id: r.id,
  ruleId: r.rule_id,
  deviceId: r.device_id,
  type: r.type as RuleKind,
  severity: r.severity as Severity,
  state: r.resolved_at !== null ? 'resolved' : r.acknowledged_at !== null ? 'acknowledged' : 'firing',
  summary: r.summary,
  details: JSON.parse(r.details) as Record<string, unknown>,
  firedAt: Number(r.fired_at),
  acknowledgedAt: num(r.acknowledged_at),
  acknowledgedBy: r.acknowledged_by,
  resolvedAt: num(r.resolved_at),
  silenced: r.silenced_at !== null,
  incidentId: r.incident_id,
});
export const toIncident = (r: IncidentRow): Incident => ({ id: r.id, ruleId: r.rule_id, openedAt: Number(r.opened_at), closedAt: num(r.closed_at), alerts: Number(r.alert_count) });
