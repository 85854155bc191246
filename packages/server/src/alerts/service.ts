import { type Clock, GroupCommit, type IdGen, type Logger, PlatformError } from '@bulwark/core';
import type { Alert, AlertChannel, AlertFilter, AlertRepository, AlertRule, Incident, Outgoing, Severity, Silence, Transition, TransitionResult } from './alerts.js';
import { type TransitionOutcome, TransitionsPartlyApplied } from './partly-applied.js';
import type { VerdictSink } from './evaluator.js';
import { incidentBody, notificationBody } from './runbooks.js';
import { type RuleInput, type SchemaFields, checkRule, conditionView } from './rule-input.js';

const RANK: Readonly<Record<Severity, number>> = { info: 0, warning: 1, critical: 2 };
const key = (ruleId: string, deviceId: string) => `${ruleId}\u0000${deviceId}`;

export interface AlertServiceDeps {
  readonly repo: AlertRepository;
  readonly clock: Clock;
  readonly ids: IdGen;
  readonly log: Logger;
  readonly fields: SchemaFields;
  /** Writes a change made by hand (acknowledge, resolve by hand) to the audit log. */
  readonly audit: (actor: string, action: string, target: string, details: Record<string, unknown>) => Promise<void>;
  /** Told of the audit entries the evaluator's transitions wrote in their own transactions (for the audit log's metric). */
  readonly audited: (entries: number) => void;
  readonly seal: (secret: string, channelId: string) => string;
  /** Told when notifications were written (wakes the notifier on this node). */
  readonly queued: () => void;
  /** Told when rules, silences or channels change (every node reloads them). */
  readonly changed: () => void;
  readonly counted: (transition: 'fired' | 'resolved' | 'acknowledged' | 'suppressed') => void;
  readonly runbookBaseUrl: string;
  readonly grouping: { readonly waitMs: number; readonly minAlerts: number; readonly windowMs: number };
  /** A rule and device that fired more than `maxFires` times within `windowMs` is flapping: its alerts are stored but not notified. */
  readonly flapping: { readonly maxFires: number; readonly windowMs: number };
  /**
   * How long a transition waits for others to share its transaction (default 1 ms). Each
   * transaction rewrites the pages it touches (indexes, the audit chain's head): at a hundred
   * transitions a second, sharing cuts their cost by half or more.
   */
  readonly batchMs?: number;
}

/**
 * The alert lifecycle: firing → acknowledged → resolved, one open alert per rule and
 * device (the store's unique index decides between racing nodes), notifications to every
 * channel written in the same transaction as the transition unless a silence or flapping
 * holds them back. Every transition is audited.
 */
export class AlertService implements VerdictSink {
  /** Rules and devices with an alert that may be open (a clear is looked at only for these). */
  readonly #open = new Set<string>();
  readonly #fires = new Map<string, number[]>();
  #silences: Silence[] = [];
  #channels: AlertChannel[] = [];

  /**
   * Fires and resolves of the same moment, written in one transaction, one batch at a time (in
   * order). A transition that fails rolls back alone: its caller gets its error, the others
   * their results.
   */
  readonly #transitions: GroupCommit<Transition, TransitionOutcome>;

  constructor(private readonly deps: AlertServiceDeps) {
    this.#transitions = new GroupCommit(
      async (items) => {
        try {
          return (await deps.repo.apply(items)).map((result) => ({ ok: true, result }) as const);
        } catch (err) {
          if (err instanceof TransitionsPartlyApplied) return [...err.outcomes];
          throw err;
        }
      },
      { maxItems: 256, maxDelayMs: deps.batchMs ?? 1, maxInFlight: 1 },
    );
  }

  /** Applies one transition with the others of its moment; rejects with its own failure. */
  async #apply(t: Transition): Promise<TransitionResult> {
    const outcome = await this.#transitions.add(t);
    if (!outcome.ok) throw outcome.error;
    return outcome.result;
  }

  /** Writes the transitions still waiting (before the store closes). */
  flush(): Promise<void> {
    return this.#transitions.drain();
  }

  /** Loads what the evaluation needs from the store: open alerts, silences, channels. */
  async refresh(): Promise<void> {
    const now = this.deps.clock.now();
    const open = await this.deps.repo.list({ state: 'open', limit: 100_000 });
    this.#open.clear();
    for (const a of open) this.#open.add(key(a.ruleId, a.deviceId));
    this.#silences = await this.deps.repo.activeSilences(now);
    this.#channels = await this.deps.repo.listChannels();
  }

  /** A device arrived on this node: its open alerts (fired where it was before) become resolvable here. */
  async learnDevice(deviceId: string): Promise<void> {
    for (const a of await this.deps.repo.list({ state: 'open', deviceId, limit: 1000 })) this.#open.add(key(a.ruleId, a.deviceId));
  }

  mayBeOpen(ruleId: string, deviceId: string): boolean {
    return this.#open.has(key(ruleId, deviceId));
  }

  // ---- rules ----

  async createRule(input: RuleInput, by: string): Promise<AlertRule> {
    const checked = await checkRule(input, this.deps.fields);
    const now = this.deps.clock.now();
    const rule: AlertRule = { id: this.deps.ids.next('rule'), ...checked, builtIn: false, createdBy: by, createdAt: now, updatedAt: now };
    await this.deps.repo.insertRule(rule);
    this.deps.changed();
    return rule;
  }

  /** Changes what is sent; the rest stays. A changed rule's per-device state starts again. */
  async updateRule(id: string, input: RuleInput): Promise<AlertRule> {
    const current = await this.getRule(id);
    const checked = await checkRule(
      {
        name: input.name ?? current.name,
        severity: input.severity ?? current.severity,
        scope: input.scope ?? current.scope,
        condition: input.condition ?? conditionView(current.condition),
        enabled: input.enabled ?? current.enabled,
      },
      this.deps.fields,
    );
    const rule: AlertRule = { ...current, ...checked, updatedAt: Math.max(this.deps.clock.now(), current.updatedAt + 1) };
    if (!(await this.deps.repo.updateRule(rule))) throw new PlatformError('BULWARK_ERR_NOT_FOUND', `no alert rule ${id}`);
    this.deps.changed();
    return rule;
  }

  async deleteRule(id: string): Promise<void> {
    const rule = await this.getRule(id);
    if (rule.builtIn) throw new PlatformError('BULWARK_ERR_CONFLICT', `${rule.name} is built in: disable it instead (PATCH with "enabled": false)`);
    await this.deps.repo.deleteRule(id);
    this.deps.changed();
  }

  async getRule(id: string): Promise<AlertRule> {
    const rule = await this.deps.repo.getRule(id);
    if (!rule) throw new PlatformError('BULWARK_ERR_NOT_FOUND', `no alert rule ${id}`);
    return rule;
  }

  listRules(): Promise<AlertRule[]> {
    return this.deps.repo.listRules();
  }

  // ---- transitions ----

  async fire(rule: AlertRule, deviceId: string, summary: string, details: Readonly<Record<string, unknown>>): Promise<void> {
    const now = this.deps.clock.now();
    const k = key(rule.id, deviceId);
    const silence = this.#silences.find((s) => s.expiresAt > now && (s.ruleId === null || s.ruleId === rule.id) && (s.deviceId === null || s.deviceId === deviceId));
    const flapping = this.#flapping(k, now);
    const alert: Alert = {
      id: this.deps.ids.next('alert'),
      ruleId: rule.id,
      deviceId,
      type: rule.condition.kind,
      severity: rule.severity,
      state: 'firing',
      summary,
      details,
      firedAt: now,
      acknowledgedAt: null,
      acknowledgedBy: null,
      resolvedAt: null,
      silenced: silence !== undefined || flapping,
      incidentId: null,
    };
    const outgoing = alert.silenced ? [] : this.#outgoing(alert, rule, 'fired');
    this.#open.add(k);
    const { waitMs, minAlerts, windowMs } = this.deps.grouping;
    const fired = await this.#apply({
      kind: 'fire',
      alert,
      outgoing,
      at: now,
      grouping: { windowMs, minAlerts, sendAt: now + waitMs, newIncidentId: this.deps.ids.next('inc'), opened: (incident) => this.#incidentOutgoing(incident, rule, 'incident.opened') },
      audit: { actor: 'system', action: 'alert.fire', target: alert.id, details: { ruleId: rule.id, deviceId, summary, ...(silence ? { silencedBy: silence.id } : {}), ...(flapping ? { flapping: true } : {}) } },
    });
    if (fired === 'open') return;
    this.deps.counted('fired');
    this.deps.audited(1);
    if (alert.silenced) this.deps.counted('suppressed');
    // The notifications are in the outbox with the alert (grouped: the incident's, if this alert made it).
    if (fired === 'grouped' || outgoing.length > 0) this.deps.queued();
  }

  async clear(rule: AlertRule, deviceId: string, summary: string): Promise<void> {
    const now = this.deps.clock.now();
    const result = await this.#apply({
      kind: 'resolve',
      ruleId: rule.id,
      deviceId,
      at: now,
      outgoing: (open) => (open.silenced ? [] : this.#outgoing({ ...open, state: 'resolved', resolvedAt: now }, rule, 'resolved', summary)),
      closed: (incident) => this.#incidentOutgoing(incident, rule, 'incident.resolved'),
      audit: (resolved) => ({ actor: 'system', action: 'alert.resolve', target: resolved.id, details: { ruleId: rule.id, deviceId, why: summary } }),
    });
    this.#open.delete(key(rule.id, deviceId));
    if (typeof result !== 'object') return;
    this.deps.counted('resolved');
    this.deps.audited(1);
    this.deps.queued();
  }

  async #resolve(alert: Alert, rule: AlertRule | undefined, why: string, actor: string): Promise<void> {
    const now = this.deps.clock.now();
    const resolved: Alert = { ...alert, state: 'resolved', resolvedAt: now };
    const outgoing = alert.silenced || !rule ? [] : this.#outgoing(resolved, rule, 'resolved', why);
    const closed = (incident: Incident) => (rule ? this.#incidentOutgoing(incident, rule, 'incident.resolved') : []);
    if (!(await this.deps.repo.resolve(alert.id, now, outgoing, closed))) return;
    this.deps.counted('resolved');
    await this.deps.audit(actor, 'alert.resolve', alert.id, { ruleId: alert.ruleId, deviceId: alert.deviceId, why });
    this.deps.queued();
  }

  async acknowledge(id: string, by: string): Promise<Alert> {
    const alert = await this.get(id);
    if (alert.state !== 'firing') throw new PlatformError('BULWARK_ERR_CONFLICT', `alert ${id} is ${alert.state}: only a firing alert can be acknowledged`);
    if (!(await this.deps.repo.acknowledge(id, by, this.deps.clock.now()))) throw new PlatformError('BULWARK_ERR_CONFLICT', `alert ${id} changed meanwhile`);
    this.deps.counted('acknowledged');
    await this.deps.audit(by, 'alert.acknowledge', id, { ruleId: alert.ruleId, deviceId: alert.deviceId });
    return this.get(id);
  }

  /** Resolves an alert by hand (a condition that cannot clear on its own, e.g. a device that was retired). */
  async resolveByHand(id: string, by: string): Promise<Alert> {
    const alert = await this.get(id);
    if (alert.state === 'resolved') throw new PlatformError('BULWARK_ERR_CONFLICT', `alert ${id} is resolved already`);
    await this.#resolve(alert, await this.deps.repo.getRule(alert.ruleId), `resolved by ${by}`, by);
    this.#open.delete(key(alert.ruleId, alert.deviceId));
    return this.get(id);
  }

  async get(id: string): Promise<Alert> {
    const alert = await this.deps.repo.get(id);
    if (!alert) throw new PlatformError('BULWARK_ERR_NOT_FOUND', `no alert ${id}`);
    return alert;
  }

  list(f: AlertFilter): Promise<Alert[]> {
    return this.deps.repo.list(f);
  }

  #flapping(k: string, now: number): boolean {
    const { maxFires, windowMs } = this.deps.flapping;
    const recent = (this.#fires.get(k) ?? []).filter((t) => now - t < windowMs);
    recent.push(now);
    this.#fires.set(k, recent);
    return recent.length > maxFires;
  }

  listIncidents(open?: boolean, limit = 100): Promise<Incident[]> {
    return this.deps.repo.listIncidents({ ...(open !== undefined ? { open } : {}), limit });
  }

  #incidentOutgoing(incident: Incident, rule: AlertRule, event: 'incident.opened' | 'incident.resolved'): Outgoing[] {
    return this.#channels
      .filter((c) => RANK[rule.severity] >= RANK[c.minSeverity])
      .map((c) => ({
        id: this.deps.ids.next('ntf'),
        channelId: c.id,
        event,
        body: incidentBody({ incident, rule, event, runbookBaseUrl: this.deps.runbookBaseUrl }),
      }));
  }

  #outgoing(alert: Alert, rule: AlertRule, event: 'fired' | 'resolved', why?: string): Outgoing[] {
    return this.#channels
      .filter((c) => RANK[alert.severity] >= RANK[c.minSeverity])
      .map((c) => ({
        id: this.deps.ids.next('ntf'),
        channelId: c.id,
        event,
        body: notificationBody({ alert, rule, event, ...(why !== undefined ? { why } : {}), runbookBaseUrl: this.deps.runbookBaseUrl }),
      }));
  }

  // ---- silences and channels ----

  async silence(input: { ruleId?: string; deviceId?: string; reason: string; durationMs: number }, by: string): Promise<Silence> {
    if (input.ruleId === undefined && input.deviceId === undefined) throw new PlatformError('BULWARK_ERR_VALIDATION', 'a silence names a rule, a device, or both (silencing everything is a channel change)');
    if (input.ruleId !== undefined) await this.getRule(input.ruleId);
    const now = this.deps.clock.now();
    const s: Silence = { id: this.deps.ids.next('sil'), ruleId: input.ruleId ?? null, deviceId: input.deviceId ?? null, reason: input.reason, createdBy: by, createdAt: now, expiresAt: now + input.durationMs };
    await this.deps.repo.insertSilence(s);
    this.#silences = await this.deps.repo.activeSilences(now);
    this.deps.changed();
    return s;
  }

  async expireSilence(id: string): Promise<void> {
    if (!(await this.deps.repo.expireSilence(id, this.deps.clock.now()))) throw new PlatformError('BULWARK_ERR_NOT_FOUND', `no active silence ${id}`);
    this.#silences = this.#silences.filter((s) => s.id !== id);
    this.deps.changed();
  }

  silences(): Promise<Silence[]> {
    return this.deps.repo.activeSilences(this.deps.clock.now());
  }

  /** A webhook channel (`secret` its HMAC key) or, with a `mailto:` URL and no secret, an e-mail channel. */
  async addChannel(input: { name: string; url: string; minSeverity?: Severity; batch?: boolean }, secret: string | null, by: string): Promise<AlertChannel> {
    const id = this.deps.ids.next('chan');
    const kind = input.url.startsWith('mailto:') ? 'email' : 'webhook';
    const channel: AlertChannel = {
      id,
      name: input.name,
      kind,
      url: input.url,
      secret: secret === null ? '' : this.deps.seal(secret, id),
      minSeverity: input.minSeverity ?? 'info',
      batch: kind === 'webhook' && input.batch === true,
      createdBy: by,
      createdAt: this.deps.clock.now(),
    };
    await this.deps.repo.insertChannel(channel);
    this.#channels = await this.deps.repo.listChannels();
    this.deps.changed();
    return channel;
  }

  async deleteChannel(id: string): Promise<void> {
    if (!(await this.deps.repo.deleteChannel(id))) throw new PlatformError('BULWARK_ERR_NOT_FOUND', `no alert channel ${id}`);
    this.#channels = this.#channels.filter((c) => c.id !== id);
    this.deps.changed();
  }

  channels(): Promise<AlertChannel[]> {
    return this.deps.repo.listChannels();
  }

  /** The channels as this node last loaded them (at start, on every change announced on the bus, and every minute). */
  get knownChannels(): readonly AlertChannel[] {
    return this.#channels;
  }
}
