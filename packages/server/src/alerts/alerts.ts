/**
 * Alerts: rules evaluated on the readings a node accepts and on the fleet's connectivity,
 * one alert per rule and device, and notifications written in the same transaction as the
 * change that causes them (docs/decisions/0021).
 */

import type { GroupSelector } from '../registry/index.js';

export type Severity = 'info' | 'warning' | 'critical';

/** Which devices a rule watches. Empty lists do not narrow; lists narrow together (a device must match every non-empty one). */
export interface RuleScope {
  readonly deviceIds: readonly string[];
  readonly tags: readonly string[];
  readonly models: readonly string[];
  /** Device groups (static or dynamic): a device in any of them. A deleted group holds no device. */
  readonly groups: readonly string[];
  /** Schemas (name@version) of the readings a telemetry rule reads; a fleet rule ignores it. */
  readonly schemas: readonly string[];
}

export type Comparison = '>' | '>=' | '<' | '<=';

/** What a rule watches for. */
export type RuleCondition =
  /** A field past a value for `forMs` (0: at once); clears once back past `value` ∓ `hysteresis`. */
  | { readonly kind: 'threshold'; readonly field: string; readonly op: Comparison; readonly value: number; readonly forMs: number; readonly hysteresis: number }
  /** A field changing faster than `maxPerMinute` (either way) between two readings. */
  | { readonly kind: 'rate'; readonly field: string; readonly maxPerMinute: number }
  /** No reading (or no reading carrying `field`) for `forMs` from a device that has sent one. */
  | { readonly kind: 'absence'; readonly field: string | null; readonly forMs: number }
  /** Spikes, level shifts, stuck values and drift of a field, learned per device. */
  | { readonly kind: 'anomaly'; readonly field: string; readonly warmup: number }
  /** A device whose session ended and did not come back for `forMs`. */
  | { readonly kind: 'offline'; readonly forMs: number }
  // Fleet health: conditions the platform sees rather than a reading's field.
  /** More than `connects` sessions begun within `withinMs` (a flapping connection); clears after `withinMs` with no more. */
  | { readonly kind: 'flapping'; readonly connects: number; readonly withinMs: number }
  /** The device reports a restart loop in its health report; clears with a report that does not. */
  | { readonly kind: 'restart_loop' }
  /** More than `perMinute` of the device's messages dead-lettered within a minute; clears after a minute at or under it. */
  | { readonly kind: 'dead_letters'; readonly perMinute: number }
  /** A reading whose device clock is off by more than `maxMs`; clears at a reading within it. */
  | { readonly kind: 'clock_skew'; readonly maxMs: number }
  /** The device runs firmware below the fleet's minimum security version (ota.minSecurityVersion), as its health report says. */
  | { readonly kind: 'firmware_security' }
  /** The agent's offline queue dropped readings since its previous health report; clears with a report that shows no new drop. */
  | { readonly kind: 'queue_dropping' }
  /** A rollout paused or aborted itself (its failure gate); the subject is `rollout:<id>`; clears when it runs again or completes. */
  | { readonly kind: 'rollout_stopped' }
  /** Fleet health: the device's reported configuration has disagreed with the desired one for `forMs` or longer. */
  | { readonly kind: 'twin_drift'; readonly forMs: number }
  /** Fleet health: the device's newest live certificate ends within `withinMs` (or has ended). */
  | { readonly kind: 'cert_expiry'; readonly withinMs: number }
  /** Fleet health: within `withinMs`, more than `lost` readings missing from the device's sequence, or more than `duplicates` sent again. */
  | { readonly kind: 'link_quality'; readonly lost: number; readonly duplicates: number; readonly withinMs: number }
  /**
   * A device far from its peers: its mean of `field` over `windowMs` at least `sigma` robust σ
   * from the median of its cohort (devices in scope of the same model, or carrying the same tag),
   * when the cohort has `minPeers` devices with readings or more.
   */
  | { readonly kind: 'cohort'; readonly field: string; readonly by: 'model' | 'tag'; readonly windowMs: number; readonly sigma: number; readonly minPeers: number };

export type RuleKind = RuleCondition['kind'];

export interface AlertRule {
  readonly id: string;
  readonly name: string;
  readonly severity: Severity;
  readonly scope: RuleScope;
  readonly condition: RuleCondition;
  readonly enabled: boolean;
  /** Built-in fleet-health rules come with the platform; they may be changed or disabled, not deleted. */
  readonly builtIn: boolean;
  readonly createdBy: string;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export type AlertState = 'firing' | 'acknowledged' | 'resolved';

export interface Alert {
  readonly id: string;
  readonly ruleId: string;
  readonly deviceId: string;
  /** The rule's kind when it fired (the runbook's name). */
  readonly type: RuleKind;
  readonly severity: Severity;
  readonly state: AlertState;
  /** What happened, with the numbers: "temp_c 84.2 > 80 for 5 min". */
  readonly summary: string;
  readonly details: Readonly<Record<string, unknown>>;
  readonly firedAt: number;
  readonly acknowledgedAt: number | null;
  readonly acknowledgedBy: string | null;
  readonly resolvedAt: number | null;
  /** A silence matched when it fired, or it was flapping: stored and shown, not notified. */
  readonly silenced: boolean;
  /** The fleet-wide incident it belongs to (notified as one), if any. */
  readonly incidentId: string | null;
}

/** Many devices firing one rule together (200 devices offline at once): notified once, resolved when the last of them is. */
export interface Incident {
  readonly id: string;
  readonly ruleId: string;
  readonly openedAt: number;
  readonly closedAt: number | null;
  /** Alerts it gathered so far. */
  readonly alerts: number;
}

/** How a firing alert joins others of its rule. */
export interface Grouping {
  /** Alerts of the rule fired within this window, still open and not in an incident, count toward one. */
  readonly windowMs: number;
  /** Open alerts of the rule (this one included) that make an incident. */
  readonly minAlerts: number;
  /** When this alert's own notifications go out unless an incident takes it first (group wait). */
  readonly sendAt: number;
  readonly newIncidentId: string;
  /** The notifications of a new incident (its size known only in the transaction). */
  readonly opened: (incident: Incident) => readonly Outgoing[];
}

export interface AlertFilter {
  readonly state?: AlertState | 'open';
  readonly deviceId?: string;
  readonly ruleId?: string;
  /** Alerts fired before this time, newest first (paging). */
  readonly before?: number;
  /** Only alerts of devices in at least one of these groups (a caller limited to groups); none: no alert. */
  readonly within?: readonly GroupSelector[];
  readonly limit: number;
}

/** Stops notifications for the alerts it matches until it expires; matchers narrow together. */
export interface Silence {
  readonly id: string;
  readonly ruleId: string | null;
  readonly deviceId: string | null;
  readonly reason: string;
  readonly createdBy: string;
  readonly createdAt: number;
  readonly expiresAt: number;
}

/** Where notifications go: a signed webhook, or e-mail over the platform's SMTP server. */
export interface AlertChannel {
  readonly id: string;
  readonly name: string;
  readonly kind: 'webhook' | 'email';
  /** The receiver's https:// URL, or `mailto:a@x,b@y`. */
  readonly url: string;
  /** A webhook's HMAC key, sealed by the vault ('' for e-mail). */
  readonly secret: string;
  readonly minSeverity: Severity;
  /**
   * A webhook that takes the notifications due in one pass in one POST (`{"event":"batch",
   * "notifications":[…]}`, up to 100, in order) instead of one POST each: for receivers of a
   * busy fleet. Off by default.
   */
  readonly batch: boolean;
  readonly createdBy: string;
  readonly createdAt: number;
}

export type NotificationEvent = 'fired' | 'resolved' | 'incident.opened' | 'incident.resolved';

/** One message to one channel, kept until it is delivered (the outbox). */
export interface AlertNotification {
  readonly id: string;
  /** The alert or incident it is about. */
  readonly alertId: string;
  readonly channelId: string;
  readonly event: NotificationEvent;
  readonly body: string;
  readonly attempts: number;
  readonly nextAttemptAt: number;
  readonly lastError: string | null;
  readonly createdAt: number;
}

/** A notification to write beside a transition, for each channel that takes it. */
export interface Outgoing {
  readonly id: string;
  readonly channelId: string;
  readonly event: NotificationEvent;
  readonly body: string;
}

/** The audit entry of a transition, written in its transaction when it changed something (outcome ok). */
export interface TransitionAudit {
  readonly actor: string;
  readonly action: string;
  readonly target: string;
  readonly details: Readonly<Record<string, unknown>>;
}

/** A change of an alert, applied with others in one transaction (alerts firing and resolving across a fleet). */
export type Transition =
  | { readonly kind: 'fire'; readonly alert: Alert; readonly outgoing: readonly Outgoing[]; readonly at: number; readonly grouping: Grouping; readonly audit: TransitionAudit }
  /** Resolves the open alert of the rule and device, if any; `outgoing` makes its notifications from it. */
  | {
      readonly kind: 'resolve';
      readonly ruleId: string;
      readonly deviceId: string;
      readonly at: number;
      readonly outgoing: (open: Alert) => readonly Outgoing[];
      readonly closed: (incident: Incident) => readonly Outgoing[];
      readonly audit: (resolved: Alert) => TransitionAudit;
    };

/** fire: as `fire` answers; resolve: the alert it resolved, or 'none'. */
export type TransitionResult = 'fired' | 'grouped' | 'open' | 'none' | { readonly resolved: Alert };

/**
 * Where alerts live. Transitions are conditional on the state they leave, so two nodes (or a
 * node and a person) racing on one alert change it once, and its notifications are written
 * once, in the same transaction.
 */
export interface AlertRepository {
  insertRule(r: AlertRule): Promise<void>;
  /** Inserts the rules whose ids are not there yet (the built-in ones, at every start). */
  seedRules(rules: readonly AlertRule[]): Promise<void>;
  getRule(id: string): Promise<AlertRule | undefined>;
  listRules(): Promise<AlertRule[]>;
  updateRule(r: AlertRule): Promise<boolean>;
  deleteRule(id: string): Promise<boolean>;

  /** The open (firing or acknowledged) alert of a rule and device. */
  open(ruleId: string, deviceId: string): Promise<Alert | undefined>;
  /**
   * Inserts a firing alert unless one of the rule and device is open, in one transaction with
   * its notifications: 'fired' (its own notifications, sent at grouping.sendAt), 'grouped' (it
   * joined an open incident of its rule, or made one with the rule's other recent alerts, whose
   * unsent notifications are replaced by the incident's), 'open' (one was open: nothing done).
   */
  fire(a: Alert, outgoing: readonly Outgoing[], at: number, grouping: Grouping): Promise<'fired' | 'grouped' | 'open'>;
  /**
   * Resolves an open alert with its notifications (none for an alert in an incident: the
   * incident's `closed` notifications go out when its last alert resolves). False: it was not open.
   */
  resolve(id: string, at: number, outgoing: readonly Outgoing[], closed: (incident: Incident) => readonly Outgoing[]): Promise<boolean>;
  /**
   * Applies the transitions in order, in one transaction, with the audit entry of each that
   * changed an alert (one chain step each, at the transition's time): a transition is never
   * stored without its entry, and a group costs one commit.
   */
  apply(items: readonly Transition[]): Promise<TransitionResult[]>;
  listIncidents(f: { readonly open?: boolean; readonly limit: number }): Promise<Incident[]>;
  acknowledge(id: string, by: string, at: number): Promise<boolean>;
  get(id: string): Promise<Alert | undefined>;
  list(f: AlertFilter): Promise<Alert[]>;
  countOpen(): Promise<number>;

  insertSilence(s: Silence): Promise<void>;
  /** Silences that have not expired at `now`. */
  activeSilences(now: number): Promise<Silence[]>;
  expireSilence(id: string, at: number): Promise<boolean>;

  insertChannel(c: AlertChannel): Promise<void>;
  listChannels(): Promise<AlertChannel[]>;
  deleteChannel(id: string): Promise<boolean>;

  /**
   * Notifications not delivered yet, oldest first (due or waiting for a retry), but for those
   * in `skip`: a notifier's pass leaves out what it sent and has not marked delivered yet, so
   * their bodies are not read again.
   */
  undelivered(limit: number, skip?: readonly string[]): Promise<AlertNotification[]>;
  /** Marks notifications delivered (or given up). */
  delivered(ids: readonly string[], at: number): Promise<void>;
  retryLater(id: string, attempts: number, nextAttemptAt: number, error: string): Promise<void>;
  /** Notifications not delivered yet. */
  countUndelivered(): Promise<number>;
}
