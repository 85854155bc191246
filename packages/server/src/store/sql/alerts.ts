import type { Alert, AlertChannel, AlertFilter, AlertNotification, AlertRepository, AlertRule, Grouping, Incident, Outgoing, Transition, TransitionOutcome, TransitionResult, RuleCondition, RuleScope, Severity, Silence } from '../../alerts/index.js';
import { TransitionsPartlyApplied } from '../../alerts/index.js';
import type { SqlClient, SqlExecutor, SqlValue } from '../sql-client.js';
import { type AlertRow, type IncidentRow, toAlert, toIncident } from './alert-rows.js';
import { Pipeline, applyIn, fireIn, pipelined, rescore, resolveIn } from './alert-transitions.js';
import { sealEntry } from '../../audit/index.js';
import type { AuditEvent } from '../../audit/index.js';
import { appendAuditAt, lockAuditHead } from './audit.js';
import { whereDeviceWithin } from './group-query.js';
import { Where } from './where.js';

interface RuleRow {
  id: string;
  name: string;
  severity: string;
  scope: string;
  condition: string;
  disabled_at: number | null;
  origin: string;
  created_by: string;
  created_at: number;
  updated_at: number;
}
interface SilenceRow {
  id: string;
  rule_id: string | null;
  device_id: string | null;
  reason: string;
  created_by: string;
  created_at: number;
  expires_at: number;
}
interface ChannelRow {
  id: string;
  name: string;
  kind: string;
  url: string;
  secret: string;
  min_severity: string;
  batch: number | string;
  created_by: string;
  created_at: number;
}
interface NotificationRow {
  id: string;
  alert_id: string;
  channel_id: string;
  event: string;
  body: string;
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  created_at: number;
}

const toRule = (r: RuleRow): AlertRule => ({
  id: r.id,
  name: r.name,
  severity: r.severity as Severity,
  scope: { groups: [], ...(JSON.parse(r.scope) as Partial<RuleScope>) } as RuleScope,
  condition: JSON.parse(r.condition) as RuleCondition,
  enabled: r.disabled_at === null,
  builtIn: r.origin === 'builtin',
  createdBy: r.created_by,
  createdAt: Number(r.created_at),
  updatedAt: Number(r.updated_at),
});
const toSilence = (r: SilenceRow): Silence => ({
  id: r.id,
  ruleId: r.rule_id,
  deviceId: r.device_id,
  reason: r.reason,
  createdBy: r.created_by,
  createdAt: Number(r.created_at),
  expiresAt: Number(r.expires_at),
});
const toChannel = (r: ChannelRow): AlertChannel => ({
  id: r.id,
  name: r.name,
  kind: r.kind === 'email' ? 'email' : 'webhook',
  url: r.url,
  secret: r.secret,
  minSeverity: r.min_severity as Severity,
  batch: Number(r.batch) === 1,
  createdBy: r.created_by,
  createdAt: Number(r.created_at),
});
const toNotification = (r: NotificationRow): AlertNotification => ({
  id: r.id,
  alertId: r.alert_id,
  channelId: r.channel_id,
  event: r.event as AlertNotification['event'],
  body: r.body,
  attempts: Number(r.attempts),
  nextAttemptAt: Number(r.next_attempt_at),
  lastError: r.last_error,
  createdAt: Number(r.created_at),
});

const RULE_VALUES = (r: AlertRule): SqlValue[] => [r.id, r.name, r.severity, JSON.stringify(r.scope), JSON.stringify(r.condition), r.enabled ? null : r.updatedAt, r.builtIn ? 'builtin' : 'user', r.createdBy, r.createdAt, r.updatedAt];
const INSERT_RULE = `INSERT INTO alert_rules (id, name, severity, scope, condition, disabled_at, origin, created_by, created_at, updated_at)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`;

const seal = (ts: number, event: AuditEvent, seq: number, prevHash: string) => sealEntry(seq, ts, event, prevHash);

/** The audit entries of the transitions that changed an alert, in their order (a failed one, undefined, has none). */
function auditOf(items: readonly Transition[], results: readonly (TransitionResult | undefined)[]): { ts: number; event: AuditEvent }[] {
  const audited: { ts: number; event: AuditEvent }[] = [];
  items.forEach((t, i) => {
    const result = results[i];
    const entry = t.kind === 'fire' ? (result === 'fired' || result === 'grouped' ? t.audit : undefined) : typeof result === 'object' ? t.audit(result.resolved) : undefined;
    if (entry) audited.push({ ts: t.at, event: { ...entry, target: entry.target, result: 'ok', requestId: null, source: null } });
  });
  return audited;
}

export class SqlAlertRepository implements AlertRepository {
  constructor(private readonly db: SqlClient) {}

  async insertRule(r: AlertRule): Promise<void> {
    await this.db.run(INSERT_RULE, RULE_VALUES(r));
  }

  async seedRules(rules: readonly AlertRule[]): Promise<void> {
    if (rules.length === 0) return;
    await this.db.runMany(`${INSERT_RULE} ON CONFLICT (id) DO NOTHING`, rules.map(RULE_VALUES));
  }

  async getRule(id: string): Promise<AlertRule | undefined> {
    const r = await this.db.get<RuleRow>('SELECT * FROM alert_rules WHERE id = $1', [id]);
    return r && toRule(r);
  }

  async listRules(): Promise<AlertRule[]> {
    return (await this.db.all<RuleRow>('SELECT * FROM alert_rules ORDER BY created_at, id')).map(toRule);
  }

  async updateRule(r: AlertRule): Promise<boolean> {
    return (
      (await this.db.run('UPDATE alert_rules SET name = $2, severity = $3, scope = $4, condition = $5, disabled_at = $6, updated_at = $7 WHERE id = $1', [
        r.id,
        r.name,
        r.severity,
        JSON.stringify(r.scope),
        JSON.stringify(r.condition),
        r.enabled ? null : r.updatedAt,
        r.updatedAt,
      ])) > 0
    );
  }

  async deleteRule(id: string): Promise<boolean> {
    return (await this.db.run('DELETE FROM alert_rules WHERE id = $1', [id])) > 0;
  }

  async open(ruleId: string, deviceId: string): Promise<Alert | undefined> {
    const r = await this.db.get<AlertRow>('SELECT * FROM alerts WHERE rule_id = $1 AND device_id = $2 AND resolved_at IS NULL', [ruleId, deviceId]);
    return r && toAlert(r);
  }

  fire(a: Alert, outgoing: readonly Outgoing[], at: number, g: Grouping): Promise<'fired' | 'grouped' | 'open'> {
    return this.db.transaction((tx) => pipelined((pipe) => fireIn(tx, a, outgoing, at, g, pipe)));
  }

  resolve(id: string, at: number, outgoing: readonly Outgoing[], closed: (incident: Incident) => readonly Outgoing[]): Promise<boolean> {
    return this.db.transaction((tx) => pipelined((pipe) => resolveIn(tx, id, at, () => outgoing, closed, pipe)));
  }

  /**
   * The group side by side in one transaction: each transition's first statements share one
   * exchange with the store, their follow-ups the next (on SQLite the BEGIN and the chain's head
   * travel with the first, the audit entries and the COMMIT with the last: two messages to the
   * worker for the group). When one fails, the transaction rolls back and the group is applied
   * again one transition at a time, each in a savepoint: the one that fails rolls back alone
   * and apply rejects with TransitionsPartlyApplied, the others committed.
   */
  async apply(items: readonly Transition[]): Promise<TransitionResult[]> {
    try {
      return await this.db.transaction((tx) => this.#applyTogether(tx, items));
    } catch (err) {
      if (items.length < 2) throw err;
      const outcomes = await this.db.transaction((tx) => this.#applyEach(tx, items));
      if (outcomes.every((o) => o.ok)) return outcomes.map((o) => (o as { result: TransitionResult }).result);
      throw new TransitionsPartlyApplied(outcomes);
    }
  }

  async #applyTogether(tx: SqlExecutor, items: readonly Transition[]): Promise<TransitionResult[]> {
    // SQLite: the head is read with the first statements (the write lock is held from BEGIN).
    // PostgreSQL: locked last, after the transitions' own writes, so other nodes wait for it briefly.
    const early = this.db.engine === 'sqlite' ? lockAuditHead(tx, 'sqlite') : undefined;
    early?.catch(() => undefined);
    const pipe = new Pipeline();
    // Two that open the same rule's incident meet at its unique index (the second joins, as across nodes).
    const settled = await Promise.allSettled(items.map((t) => applyIn(tx, t, pipe)));
    const failed = settled.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    const results = settled.map((r) => (r as PromiseFulfilledResult<TransitionResult>).value);
    const audited = auditOf(items, results);
    if (audited.length > 0) {
      if (!early) await pipe.settle();
      appendAuditAt(tx, await (early ?? lockAuditHead(tx, this.db.engine)), audited, seal);
    }
    // The writes still under way go out with the COMMIT; one that fails fails the transaction.
    return results;
  }

  async #applyEach(tx: SqlExecutor, items: readonly Transition[]): Promise<TransitionOutcome[]> {
    const outcomes: TransitionOutcome[] = [];
    for (const t of items) {
      await tx.run('SAVEPOINT transition');
      try {
        outcomes.push({ ok: true, result: await pipelined((pipe) => applyIn(tx, t, pipe)) });
      } catch (error) {
        await tx.run('ROLLBACK TO SAVEPOINT transition');
        outcomes.push({ ok: false, error });
      }
      await tx.run('RELEASE SAVEPOINT transition');
    }
    const done = outcomes.map((o) => (o.ok ? o.result : undefined));
    const audited = auditOf(items, done);
    if (audited.length > 0) appendAuditAt(tx, await lockAuditHead(tx, this.db.engine), audited, seal);
    return outcomes;
  }

  async listIncidents(f: { readonly open?: boolean; readonly limit: number }): Promise<Incident[]> {
    const where = f.open === true ? 'WHERE closed_at IS NULL' : f.open === false ? 'WHERE closed_at IS NOT NULL' : '';
    return (await this.db.all<IncidentRow>(`SELECT * FROM alert_incidents ${where} ORDER BY opened_at DESC, id DESC LIMIT ${Math.trunc(f.limit)}`)).map(toIncident);
  }

  async acknowledge(id: string, by: string, at: number): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const row = await tx.get<{ device_id: string }>('UPDATE alerts SET acknowledged_at = $2, acknowledged_by = $3 WHERE id = $1 AND resolved_at IS NULL AND acknowledged_at IS NULL RETURNING device_id', [id, at, by]);
      // The device's alert state moves to acknowledged once none of its open alerts is left unacknowledged.
      if (row) await rescore(tx, row.device_id);
      return row !== undefined;
    });
  }

  async get(id: string): Promise<Alert | undefined> {
    const r = await this.db.get<AlertRow>('SELECT * FROM alerts WHERE id = $1', [id]);
    return r && toAlert(r);
  }

  async list(f: AlertFilter): Promise<Alert[]> {
    const w = new Where();
    if (f.state === 'open') w.raw('resolved_at IS NULL');
    else if (f.state === 'resolved') w.raw('resolved_at IS NOT NULL');
    else if (f.state === 'acknowledged') w.raw('resolved_at IS NULL AND acknowledged_at IS NOT NULL');
    else if (f.state === 'firing') w.raw('resolved_at IS NULL AND acknowledged_at IS NULL');
    w.add('device_id = ?', f.deviceId).add('rule_id = ?', f.ruleId).add('fired_at < ?', f.before);
    if (f.within) whereDeviceWithin(w, 'device_id', f.within);
    return (await this.db.all<AlertRow>(`SELECT * FROM alerts ${w} ORDER BY fired_at DESC, id DESC LIMIT ${Math.trunc(f.limit)}`, w.params)).map(toAlert);
  }

  async countOpen(): Promise<number> {
    return Number((await this.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM alerts WHERE resolved_at IS NULL'))?.n ?? 0);
  }

  async insertSilence(s: Silence): Promise<void> {
    await this.db.run('INSERT INTO alert_silences (id, rule_id, device_id, reason, created_by, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)', [s.id, s.ruleId, s.deviceId, s.reason, s.createdBy, s.createdAt, s.expiresAt]);
  }

  async activeSilences(now: number): Promise<Silence[]> {
    return (await this.db.all<SilenceRow>('SELECT * FROM alert_silences WHERE expires_at > $1 ORDER BY expires_at', [now])).map(toSilence);
  }

  async expireSilence(id: string, at: number): Promise<boolean> {
    return (await this.db.run('UPDATE alert_silences SET expires_at = $2 WHERE id = $1 AND expires_at > $2', [id, at])) > 0;
  }

  async insertChannel(c: AlertChannel): Promise<void> {
    await this.db.run('INSERT INTO alert_channels (id, name, kind, url, secret, min_severity, batch, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)', [
      c.id,
      c.name,
      c.kind,
      c.url,
      c.secret,
      c.minSeverity,
      c.batch ? 1 : 0,
      c.createdBy,
      c.createdAt,
    ]);
  }

  async listChannels(): Promise<AlertChannel[]> {
    return (await this.db.all<ChannelRow>('SELECT * FROM alert_channels ORDER BY created_at, id')).map(toChannel);
  }

  async deleteChannel(id: string): Promise<boolean> {
    return (await this.db.run('DELETE FROM alert_channels WHERE id = $1', [id])) > 0;
  }

  async undelivered(limit: number, skip: readonly string[] = []): Promise<AlertNotification[]> {
    // The ids to leave out travel as one JSON array: one statement text however many there are.
    const except = skip.length === 0 ? '' : this.db.engine === 'sqlite' ? 'AND id NOT IN (SELECT value FROM json_each($1))' : 'AND id NOT IN (SELECT jsonb_array_elements_text($1::jsonb))';
    return (
      await this.db.all<NotificationRow>(
        `SELECT id, alert_id, channel_id, event, body, attempts, next_attempt_at, last_error, created_at FROM alert_notifications
       WHERE delivered_at IS NULL ${except} ORDER BY created_at, id LIMIT ${Math.trunc(limit)}`,
        skip.length === 0 ? [] : [JSON.stringify(skip)],
      )
    ).map(toNotification);
  }

  async delivered(ids: readonly string[], at: number): Promise<void> {
    if (ids.length === 0) return;
    const marks = ids.map((_, i) => `$${i + 2}`).join(', ');
    await this.db.run(`UPDATE alert_notifications SET delivered_at = $1 WHERE id IN (${marks})`, [at, ...ids]);
  }

  async retryLater(id: string, attempts: number, nextAttemptAt: number, error: string): Promise<void> {
    await this.db.run('UPDATE alert_notifications SET attempts = $2, next_attempt_at = $3, last_error = $4 WHERE id = $1', [id, attempts, nextAttemptAt, error.slice(0, 500)]);
  }

  async countUndelivered(): Promise<number> {
    return Number((await this.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM alert_notifications WHERE delivered_at IS NULL'))?.n ?? 0);
  }
}
