import type { Clock, Logger } from '@bulwark/core';
import type { TelemetryRecord } from '../ingest/index.js';
import type { AlertRule, RuleCondition, RuleScope } from './alerts.js';
import { type AnomalyDetectorFactory, type SeriesCheck, type Verdict, seriesCheck } from './conditions.js';
import { type FieldMemory, FieldPlan, type Step } from './field-plan.js';
import { Deadlines } from './deadlines.js';
import { formatDuration } from './rule-input.js';

/** What a scope needs to know of a device. */
export interface DeviceFacts {
  readonly tags: readonly string[];
  readonly model: string | null;
  /** Those of the groups the rules name that hold the device (membership as of when the facts were read). */
  readonly groups: readonly string[];
}

/** Facts for a rule that narrows by nothing but ids (no registry read needed). */
export const NO_FACTS: DeviceFacts = { tags: [], model: null, groups: [] };

/** Whether the scope narrows by something only the registry knows (tags, model, groups). */
export const needsFacts = (scope: RuleScope): boolean => scope.tags.length > 0 || scope.models.length > 0 || scope.groups.length > 0;

/** Where the evaluator's verdicts go (the alert service: stored, deduplicated, notified). */
export interface VerdictSink {
  fire(rule: AlertRule, deviceId: string, summary: string, details: Readonly<Record<string, unknown>>): Promise<void>;
  clear(rule: AlertRule, deviceId: string, summary: string): Promise<void>;
  /** False when no alert of the rule and device can be open: a clear is then nothing to do. */
  mayBeOpen(ruleId: string, deviceId: string): boolean;
}

export interface EvaluatorDeps {
  readonly clock: Clock;
  readonly log: Logger;
  readonly facts: (deviceId: string) => Promise<DeviceFacts | undefined>;
  /** Whether the registry sees the device online now (any node's session). */
  readonly online: (deviceId: string) => Promise<boolean>;
  readonly sink: VerdictSink;
  readonly anomaly: AnomalyDetectorFactory;
  /** How long a device's facts are trusted before they are read again. */
  readonly factsTtlMs?: number;
  readonly onError?: () => void;
}

/**
 * What a device's reading of one schema is run through: its absence rules (each sets a
 * deadline), and its other reading rules by the field they read, so a field is looked up and
 * checked for a number once, however many rules read it, and rules at rest are skipped.
 */
interface Plan {
  readonly absence: readonly AlertRule[];
  readonly fields: readonly FieldPlan[];
}

interface DeviceState {
  readonly facts: DeviceFacts;
  /** When the facts were read (-Infinity: to be read again at the next reading). */
  at: number;
  /** The state of each reading rule, by rule id (kept when the plans are made again). */
  readonly checks: Map<string, SeriesCheck>;
  /**
   * The previous reading of each field, by schema and field (kept when the plans are made
   * again, as the checks are): what rate rules compare with.
   */
  readonly previous: Map<string, FieldMemory>;
  /** The plan for readings of each schema. */
  readonly plans: Map<string, Plan>;
  generation: number;
}

/** The kinds this evaluator runs on readings (the others run on connectivity, health reports or sweeps). */
const READING_KINDS: ReadonlySet<RuleCondition['kind']> = new Set(['threshold', 'rate', 'absence', 'anomaly']);

const key = (ruleId: string, deviceId: string) => `${ruleId}\u0000${deviceId}`;
const split = (k: string): [string, string] => {
  const i = k.indexOf('\u0000');
  return [k.slice(0, i), k.slice(i + 1)];
};

/** The groups any of the rules' scopes name, sorted, once each. */
export function groupsNamed(rules: readonly AlertRule[]): string[] {
  return [...new Set(rules.flatMap((r) => r.scope.groups))].sort();
}

export function inScope(scope: RuleScope, deviceId: string, facts: DeviceFacts): boolean {
  if (scope.deviceIds.length > 0 && !scope.deviceIds.includes(deviceId)) return false;
  if (scope.models.length > 0 && (facts.model === null || !scope.models.includes(facts.model))) return false;
  if (scope.tags.length > 0 && !scope.tags.some((t) => facts.tags.includes(t))) return false;
  if (scope.groups.length > 0 && !scope.groups.some((g) => facts.groups.includes(g))) return false;
  return true;
}

/**
 * Evaluates the rules on this node's readings and connectivity, in memory: the node that
 * accepts a device's reading evaluates it (cluster mode: the node holding its session), so
 * a device's state lives on one node. Reading rules keep a small state per rule and device;
 * absence and offline rules keep a deadline per device that did something, on one timer.
 */
export class AlertEvaluator {
  #rules: readonly AlertRule[] = [];
  /** Telemetry rules by the schema they read ('' for rules on every schema). */
  #bySchema = new Map<string, AlertRule[]>();
  #offline: AlertRule[] = [];
  readonly #devices = new Map<string, DeviceState>();
  /** Bumped when the rules change: every device's plans are made again. */
  #generation = 0;
  /** The groups the rules name, joined (facts are read again when it changes). */
  #named = '';
  /** Readings of a device waiting for its facts, in order. */
  readonly #waiting = new Map<string, TelemetryRecord[]>();
  readonly #deadlines: Deadlines;
  readonly #ttl: number;

  constructor(private readonly deps: EvaluatorDeps) {
    this.#ttl = deps.factsTtlMs ?? 60_000;
    this.#deadlines = new Deadlines(deps.clock, (k) => void this.#due(k));
  }

  setRules(rules: readonly AlertRule[]): void {
    const before = new Map(this.#rules.map((r) => [r.id, r.updatedAt]));
    this.#rules = rules.filter((r) => r.enabled);
    const kept = new Set(this.#rules.filter((r) => before.get(r.id) === r.updatedAt).map((r) => r.id));
    // A changed or removed rule starts again from nothing.
    for (const device of this.#devices.values()) for (const id of device.checks.keys()) if (!kept.has(id)) device.checks.delete(id);
    this.#bySchema = new Map();
    for (const r of this.#rules) {
      if (!READING_KINDS.has(r.condition.kind)) continue;
      for (const s of r.scope.schemas.length > 0 ? r.scope.schemas : ['']) this.#bySchema.set(s, [...(this.#bySchema.get(s) ?? []), r]);
    }
    this.#offline = this.#rules.filter((r) => r.condition.kind === 'offline');
    this.#generation += 1;
    // Facts say which of the named groups hold a device: a newly named group needs them read again.
    const named = groupsNamed(this.#rules).join('\u0000');
    if (named !== this.#named) for (const device of this.#devices.values()) device.at = -Infinity;
    this.#named = named;
  }

  /** Deadlines held now (absence and offline), for /metrics. */
  get deadlines(): number {
    return this.#deadlines.size;
  }

  /** A reading this node accepted. Never throws; never waits. */
  observe(record: TelemetryRecord): void {
    if (!this.#bySchema.has(record.schemaId) && !this.#bySchema.has('')) return;
    const queued = this.#waiting.get(record.deviceId);
    if (queued) {
      queued.push(record);
      return;
    }
    const known = this.#devices.get(record.deviceId);
    if (known && this.deps.clock.now() - known.at < this.#ttl) {
      this.#evaluate(record, known);
      return;
    }
    this.#waiting.set(record.deviceId, [record]);
    void this.#load(record.deviceId).then((facts) => {
      const records = this.#waiting.get(record.deviceId) ?? [];
      this.#waiting.delete(record.deviceId);
      const device = this.#devices.get(record.deviceId);
      if (facts && device) for (const r of records) this.#evaluate(r, device);
    });
  }

  async #load(deviceId: string): Promise<DeviceFacts | undefined> {
    try {
      const facts = await this.deps.facts(deviceId);
      // New facts (tags, model) may change which rules apply: the plans are made again, the rules' state is kept.
      const before = this.#devices.get(deviceId);
      if (facts) this.#devices.set(deviceId, { facts, at: this.deps.clock.now(), checks: before?.checks ?? new Map(), previous: before?.previous ?? new Map(), plans: new Map(), generation: this.#generation });
      else this.#devices.delete(deviceId);
      return facts;
    } catch (err) {
      this.deps.onError?.();
      this.deps.log.warn({ deviceId, err: (err as Error).message }, 'alerts: could not read the device for its rules');
      return undefined;
    }
  }

  /** Runs the device's plan for the reading's schema: the rules in scope, each with its state, worked out once. */
  #evaluate(record: TelemetryRecord, device: DeviceState): void {
    if (device.generation !== this.#generation) {
      device.plans.clear();
      device.generation = this.#generation;
    }
    let plan = device.plans.get(record.schemaId);
    if (!plan) device.plans.set(record.schemaId, (plan = this.#plan(record, device)));
    const { data, deviceId, receivedAt } = record;
    for (const rule of plan.absence) {
      const c = rule.condition as Extract<RuleCondition, { kind: 'absence' }>;
      if (c.field !== null && !(c.field in data)) continue;
      this.#deadlines.set(key(rule.id, deviceId), receivedAt + c.forMs);
      if (this.deps.sink.mayBeOpen(rule.id, deviceId)) this.#apply(rule, deviceId, { clear: `${c.field ?? 'a reading'} arrived` });
    }
    for (const fieldPlan of plan.fields) {
      const value = data[fieldPlan.field];
      if (typeof value !== 'number' || !Number.isFinite(value)) continue;
      fieldPlan.run(value, receivedAt, deviceId, this.#said);
    }
  }

  #plan(record: TelemetryRecord, device: DeviceState): Plan {
    const absence: AlertRule[] = [];
    const byField = new Map<string, Step[]>();
    for (const rules of [this.#bySchema.get(record.schemaId), this.#bySchema.get('')]) {
      for (const rule of rules ?? []) {
        if (!inScope(rule.scope, record.deviceId, device.facts)) continue;
        const c = rule.condition;
        if (c.kind === 'absence') {
          absence.push(rule);
          continue;
        }
        let check = device.checks.get(rule.id);
        if (!check) {
          check = seriesCheck(c, this.deps.anomaly);
          if (!check) continue;
          device.checks.set(rule.id, check);
        }
        const field = (c as { field: string }).field;
        const step = { rule, check, skippable: rule.scope.schemas.length === 1 };
        const steps = byField.get(field);
        if (steps) steps.push(step);
        else byField.set(field, [step]);
      }
    }
    const memory = (field: string): FieldMemory => {
      const k = `${record.schemaId}\u0000${field}`;
      let m = device.previous.get(k);
      if (!m) device.previous.set(k, (m = { previous: undefined }));
      return m;
    };
    return { absence, fields: [...byField].map(([field, steps]) => new FieldPlan(field, steps, memory(field))) };
  }

  readonly #said = (rule: AlertRule, deviceId: string, verdict: Verdict): void => this.#apply(rule, deviceId, verdict);

  #apply(rule: AlertRule, deviceId: string, verdict: Verdict): void {
    if (!verdict) return;
    const done = 'fire' in verdict ? this.deps.sink.fire(rule, deviceId, verdict.fire, verdict.details) : this.deps.sink.mayBeOpen(rule.id, deviceId) ? this.deps.sink.clear(rule, deviceId, verdict.clear) : undefined;
    done?.catch((err: unknown) => {
      this.deps.onError?.();
      this.deps.log.error({ err, ruleId: rule.id, deviceId }, 'alerts: could not record a change of an alert');
    });
  }

  /** A session of the device ended on this node: offline rules start counting. */
  disconnected(deviceId: string, at: number): void {
    if (this.#offline.length === 0) return;
    void this.#load(deviceId).then((facts) => {
      if (!facts) return;
      for (const rule of this.#offline) {
        if (rule.condition.kind === 'offline' && inScope(rule.scope, deviceId, facts)) this.#deadlines.set(key(rule.id, deviceId), at + rule.condition.forMs);
      }
    });
  }

  /** A session of the device began on this node: offline deadlines end, open offline alerts resolve. */
  connected(deviceId: string): void {
    for (const rule of this.#offline) {
      this.#deadlines.cancel(key(rule.id, deviceId));
      this.#apply(rule, deviceId, { clear: 'connected again' });
    }
  }

  async #due(k: string): Promise<void> {
    const [ruleId, deviceId] = split(k);
    const rule = this.#rules.find((r) => r.id === ruleId);
    if (!rule) return;
    const c = rule.condition;
    try {
      if (c.kind === 'offline') {
        // Another node may hold a new session of the device by now.
        if (await this.deps.online(deviceId)) return;
        this.#apply(rule, deviceId, { fire: `offline for ${formatDuration(c.forMs)} or more`, details: { offlineForMs: c.forMs } });
      } else if (c.kind === 'absence') {
        this.#apply(rule, deviceId, { fire: `no ${c.field === null ? 'reading' : `reading with ${c.field}`} for ${formatDuration(c.forMs)}`, details: { field: c.field, forMs: c.forMs } });
      }
    } catch (err) {
      this.deps.onError?.();
      this.deps.log.warn({ err: (err as Error).message, ruleId, deviceId }, 'alerts: could not check a deadline');
    }
  }

  /** Acts on the deadlines that have passed: the timer does this; a test on a manual clock calls it. */
  tick(): void {
    this.#deadlines.run();
  }

  stop(): void {
    this.#deadlines.stop();
  }
}
