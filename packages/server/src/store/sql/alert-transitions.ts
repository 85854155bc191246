import type { Alert, Grouping, Incident, Outgoing, Transition, TransitionResult } from '../../alerts/index.js';
import type { SqlExecutor } from '../sql-client.js';
import { type AlertRow, type IncidentRow, toAlert, toIncident } from './alert-rows.js';

/**
 * The alert transitions inside a transaction: the alert row, its incident and its
 * notifications change together (docs/decisions/0021). A transition waits for one answer
 * from the store in the common case (fired alone, resolved alone): the writes whose answer it
 * does not need go out without waiting (a connection runs its statements in order) and are
 * settled before anything reads what they wrote, and before the commit.
 */

/** Writes posted without waiting for their answer; `settle` waits for them (and fails with the first that failed). */
export class Pipeline {
  readonly #pending: Promise<unknown>[] = [];

  post(write: Promise<unknown>): void {
    // Settled (and its failure thrown) by `settle`; never an unhandled rejection meanwhile.
    write.catch(() => undefined);
    this.#pending.push(write);
  }

  async settle(): Promise<void> {
    await Promise.all(this.#pending.splice(0));
  }
}

/** Notifications to send from `sendAt` on; created now (their order per channel). */
function queue(tx: SqlExecutor, alertId: string, outgoing: readonly Outgoing[], sendAt: number, createdAt: number): Promise<unknown> {
  if (outgoing.length === 0) return Promise.resolve();
  return tx.runMany(
    `INSERT INTO alert_notifications (id, alert_id, channel_id, event, body, attempts, next_attempt_at, last_error, created_at, delivered_at)
     VALUES ($1, $2, $3, $4, $5, 0, $6, NULL, $7, NULL)`,
    outgoing.map((o) => [o.id, alertId, o.channelId, o.event, o.body, sendAt, createdAt]),
  );
}

/** Penalty of each open alert on its device's health score. */
const PENALTY = "CASE severity WHEN 'critical' THEN 40 WHEN 'warning' THEN 15 ELSE 5 END";

/**
 * The device's health score and alert state (firing: some open alert not acknowledged;
 * acknowledged: all acknowledged; none) from its open alerts. A subject that is no device,
 * `rollout:…`, matches no row.
 */
export function rescore(tx: SqlExecutor, deviceId: string): Promise<number> {
  return tx.run(
    `UPDATE devices SET (health_score, alert_state) = (
       SELECT CASE WHEN COALESCE(SUM(${PENALTY}), 0) >= 100 THEN 0 ELSE 100 - COALESCE(SUM(${PENALTY}), 0) END,
              CASE WHEN COUNT(*) = 0 THEN 'none' WHEN COUNT(*) > COUNT(acknowledged_at) THEN 'firing' ELSE 'acknowledged' END
       FROM alerts WHERE device_id = $1 AND resolved_at IS NULL) WHERE id = $1`,
    [deviceId],
  );
}

/**
 * Puts a new alert into its rule's open incident, if there is one; counted there unless the
 * incident gathered it already (it was made in the same transaction, after this alert went in).
 */
async function joinOpenIncident(tx: SqlExecutor, a: Alert): Promise<boolean> {
  const open = await tx.get<{ id: string }>('SELECT id FROM alert_incidents WHERE rule_id = $1 AND closed_at IS NULL', [a.ruleId]);
  if (!open) return false;
  if ((await tx.run('UPDATE alerts SET incident_id = $2 WHERE id = $1 AND incident_id IS NULL', [a.id, open.id])) > 0) {
    await tx.run('UPDATE alert_incidents SET alert_count = alert_count + 1 WHERE id = $1', [open.id]);
  }
  return true;
}

/** Fires `a` unless an alert of its rule and device is open; groups it into an incident when its rule has enough recent ones. */
export async function fireIn(tx: SqlExecutor, a: Alert, outgoing: readonly Outgoing[], at: number, g: Grouping, pipe: Pipeline): Promise<'fired' | 'grouped' | 'open'> {
  // The insert and what grouping needs to know, in one exchange (the count includes the new alert
  // when it went in). Counted up to minAlerts: whether an incident opens, not how big it is.
  const [inserted, rule] = await Promise.all([
    tx.run(
      `INSERT INTO alerts (id, rule_id, device_id, type, severity, summary, details, fired_at, acknowledged_at, acknowledged_by, resolved_at, silenced_at, incident_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, NULL, $9, NULL) ON CONFLICT DO NOTHING`,
      [a.id, a.ruleId, a.deviceId, a.type, a.severity, a.summary, JSON.stringify(a.details), a.firedAt, a.silenced ? at : null],
    ),
    tx.get<{ open_id: string | null; recent: number | string }>(
      `SELECT (SELECT id FROM alert_incidents WHERE rule_id = $1 AND closed_at IS NULL) AS open_id,
              (SELECT COUNT(*) FROM (SELECT 1 FROM alerts WHERE rule_id = $1 AND resolved_at IS NULL AND incident_id IS NULL AND fired_at >= $2 LIMIT $3) x) AS recent`,
      [a.ruleId, at - g.windowMs, g.minAlerts],
    ),
  ]);
  if (inserted === 0) return 'open';
  pipe.post(rescore(tx, a.deviceId));
  const openIncident = rule?.open_id ?? null;
  if (openIncident !== null) {
    pipe.post(tx.run('UPDATE alerts SET incident_id = $2 WHERE id = $1', [a.id, openIncident]));
    pipe.post(tx.run('UPDATE alert_incidents SET alert_count = alert_count + 1 WHERE id = $1', [openIncident]));
    return 'grouped';
  }
  const recent = Number(rule?.recent ?? 0);
  if (recent < g.minAlerts) {
    pipe.post(queue(tx, a.id, outgoing, g.sendAt, at));
    return 'fired';
  }
  // An incident opens (rare): step by step, on what the earlier writes left.
  await pipe.settle();
  const made = await tx.run('INSERT INTO alert_incidents (id, rule_id, opened_at, closed_at, alert_count) VALUES ($1, $2, $3, NULL, $4) ON CONFLICT DO NOTHING', [g.newIncidentId, a.ruleId, at, recent]);
  // Another node made it meanwhile: join that one.
  if (made === 0) return (await joinOpenIncident(tx, a)) ? 'grouped' : 'fired';
  const gathered = await tx.run('UPDATE alerts SET incident_id = $1 WHERE rule_id = $2 AND resolved_at IS NULL AND incident_id IS NULL AND fired_at >= $3', [g.newIncidentId, a.ruleId, at - g.windowMs]);
  if (gathered !== recent) await tx.run('UPDATE alert_incidents SET alert_count = $2 WHERE id = $1', [g.newIncidentId, gathered]);
  // What the gathered alerts have not sent yet, the incident says once.
  await tx.run(`DELETE FROM alert_notifications WHERE delivered_at IS NULL AND event = 'fired' AND alert_id IN (SELECT id FROM alerts WHERE incident_id = $1)`, [g.newIncidentId]);
  await queue(tx, g.newIncidentId, g.opened({ id: g.newIncidentId, ruleId: a.ruleId, openedAt: at, closedAt: null, alerts: gathered }), at, at);
  return 'grouped';
}

/**
 * What follows an alert's resolve: its device's score, and the notifications `outgoing` makes
 * for it (none for an alert in an incident: the incident's `closed` ones go out when its last
 * alert resolves).
 */
async function afterResolve(
  tx: SqlExecutor,
  resolved: { readonly id: string; readonly incident_id: string | null; readonly device_id: string },
  at: number,
  outgoing: () => readonly Outgoing[],
  closed: (incident: Incident) => readonly Outgoing[],
  pipe: Pipeline,
): Promise<void> {
  pipe.post(rescore(tx, resolved.device_id));
  const incidentId = resolved.incident_id;
  if (incidentId === null) {
    pipe.post(queue(tx, resolved.id, outgoing(), at, at));
    return;
  }
  await pipe.settle();
  const left = Number((await tx.get<{ n: number }>('SELECT COUNT(*) AS n FROM alerts WHERE incident_id = $1 AND resolved_at IS NULL', [incidentId]))?.n ?? 0);
  if (left === 0 && (await tx.run('UPDATE alert_incidents SET closed_at = $2 WHERE id = $1 AND closed_at IS NULL', [incidentId, at])) > 0) {
    const incident = await tx.get<IncidentRow>('SELECT * FROM alert_incidents WHERE id = $1', [incidentId]);
    if (incident) await queue(tx, incidentId, closed(toIncident(incident)), at, at);
  }
}

/** Resolves an open alert by id; false when it was not open. */
export async function resolveIn(tx: SqlExecutor, id: string, at: number, outgoing: () => readonly Outgoing[], closed: (incident: Incident) => readonly Outgoing[], pipe: Pipeline): Promise<boolean> {
  const row = await tx.get<{ id: string; incident_id: string | null; device_id: string }>('UPDATE alerts SET resolved_at = $2 WHERE id = $1 AND resolved_at IS NULL RETURNING id, incident_id, device_id', [id, at]);
  if (!row) return false;
  await afterResolve(tx, row, at, outgoing, closed, pipe);
  return true;
}

/** One transition; writes it leaves to `pipe` are settled by the caller before the commit. */
export async function applyIn(tx: SqlExecutor, t: Transition, pipe: Pipeline): Promise<TransitionResult> {
  if (t.kind === 'fire') return fireIn(tx, t.alert, t.outgoing, t.at, t.grouping, pipe);
  // Resolved and read in one exchange: the row as it was, but for its resolve time.
  const row = await tx.get<AlertRow>('UPDATE alerts SET resolved_at = $3 WHERE rule_id = $1 AND device_id = $2 AND resolved_at IS NULL RETURNING *', [t.ruleId, t.deviceId, t.at]);
  if (!row) return 'none';
  const open = toAlert({ ...row, resolved_at: null });
  await afterResolve(tx, row, t.at, () => t.outgoing(open), t.closed, pipe);
  return { resolved: open };
}

/** Runs `fn` with a pipeline and settles it before returning (so before the commit). */
export async function pipelined<T>(fn: (pipe: Pipeline) => Promise<T>): Promise<T> {
  const pipe = new Pipeline();
  try {
    return await fn(pipe);
  } finally {
    await pipe.settle();
  }
}
