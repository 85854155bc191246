import type { Clock, Logger } from '@bulwark/core';
import type { TelemetryRecord } from '../ingest/index.js';
import type { AlertRule, RuleCondition, RuleKind } from './alerts.js';
import { Deadlines } from './deadlines.js';
import { type DeviceFacts, NO_FACTS, type VerdictSink, inScope, needsFacts } from './evaluator.js';
import { formatDuration, humanDuration } from './rule-input.js';

/** What a device's health report says that fleet-health rules read. */
export interface ReportedHealth {
  readonly restartLoop?: boolean;
  readonly recentRestarts?: number;
  readonly restartReason?: string;
  readonly queueDropped?: number;
  readonly firmware?: { readonly version?: string; readonly securityVersion?: number };
}

export interface FleetHealthDeps {
  readonly clock: Clock;
  readonly log: Logger;
  readonly sink: VerdictSink;
  readonly facts: (deviceId: string) => Promise<DeviceFacts | undefined>;
  /** The fleet's minimum security version now (ota.minSecurityVersion; 0: none). */
  readonly minSecurityVersion: () => number;
  readonly onError?: () => void;
}

const DEAD_LETTER_WINDOW_MS = 60_000;
/** Timestamps kept per device for the flapping and dead-letter counts (past the largest threshold, more say nothing new). */
const MAX_KEPT = 1_000;
const key = (ruleId: string, subject: string) => `${ruleId}\u0000${subject}`;

type Of<K extends RuleKind> = Extract<RuleCondition, { kind: K }>;

/**
 * Fleet-health rules: conditions the platform sees about a device rather than a field of its
 * readings (connections that flap, a restart loop, dead letters, a wrong clock, old firmware,
 * an agent losing readings, a rollout that stopped itself). Each is level-triggered: the
 * platform says a condition holds or no longer holds, and the rules of its kind in scope fire
 * once and clear once. Like the reading rules it runs on the node that hears the device.
 */
export class FleetHealth {
  #rules = new Map<RuleKind, AlertRule[]>();
  /** Rule and subject pairs this node fired and has not cleared. */
  readonly #firing = new Set<string>();
  readonly #connects = new Map<string, number[]>();
  readonly #deadLetters = new Map<string, number[]>();
  readonly #dropped = new Map<string, number>();
  /** Per device: when readings were lost or repeated, and how many ([at, lost, repeated]). */
  readonly #link = new Map<string, [number, number, number][]>();
  readonly #deadlines: Deadlines;

  constructor(private readonly deps: FleetHealthDeps) {
    this.#deadlines = new Deadlines(deps.clock, (k) => void this.#due(k));
  }

  setRules(rules: readonly AlertRule[]): void {
    const byKind = new Map<RuleKind, AlertRule[]>();
    for (const r of rules) if (r.enabled) byKind.set(r.condition.kind, [...(byKind.get(r.condition.kind) ?? []), r]);
    this.#rules = byKind;
  }

  get deadlines(): number {
    return this.#deadlines.size;
  }

  /** A session began: flapping counts it; the count clears the alert once a window passes without another. */
  connected(deviceId: string, at: number): void {
    const rules = this.#rules.get('flapping');
    if (!rules) return;
    const times = push(this.#connects, deviceId, at, Math.max(...rules.map((r) => (r.condition as Of<'flapping'>).withinMs)));
    void this.#each(rules, deviceId, (rule) => {
      const c = rule.condition as Of<'flapping'>;
      const recent = times.filter((t) => at - t < c.withinMs).length;
      if (recent > c.connects) this.#set(rule, deviceId, true, `${recent} connections within ${formatDuration(c.withinMs)}`, { connects: recent, withinMs: c.withinMs });
      this.#deadlines.set(key(rule.id, deviceId), at + c.withinMs);
    });
  }

  /** A message of the device went to the dead letters. */
  deadLettered(deviceId: string, at: number): void {
    const rules = this.#rules.get('dead_letters');
    if (!rules) return;
    const times = push(this.#deadLetters, deviceId, at, DEAD_LETTER_WINDOW_MS);
    const recent = times.filter((t) => at - t < DEAD_LETTER_WINDOW_MS).length;
    void this.#each(rules, deviceId, (rule) => {
      const c = rule.condition as Of<'dead_letters'>;
      if (recent > c.perMinute) this.#set(rule, deviceId, true, `${recent} messages dead-lettered within a minute`, { perMinute: recent });
      this.#deadlines.set(key(rule.id, deviceId), at + DEAD_LETTER_WINDOW_MS);
    });
  }

  /** The device's link lost `count` readings (a sequence gap) or repeated one (`duplicate`). */
  linkTrouble(deviceId: string, kind: 'lost' | 'duplicate', count: number, at: number): void {
    const rules = this.#rules.get('link_quality');
    if (!rules) return;
    const windowMs = Math.max(...rules.map((r) => (r.condition as Of<'link_quality'>).withinMs));
    const events = (this.#link.get(deviceId) ?? []).filter(([t]) => at - t < windowMs);
    events.push([at, kind === 'lost' ? count : 0, kind === 'duplicate' ? count : 0]);
    if (events.length > MAX_KEPT) events.splice(0, events.length - MAX_KEPT);
    this.#link.set(deviceId, events);
    void this.#each(rules, deviceId, (rule) => {
      const c = rule.condition as Of<'link_quality'>;
      let [lost, repeated] = [0, 0];
      for (const [t, l, r] of events) if (at - t < c.withinMs) [lost, repeated] = [lost + l, repeated + r];
      if (lost > c.lost || repeated > c.duplicates) {
        this.#set(rule, deviceId, true, `${lost} readings lost and ${repeated} sent again within ${formatDuration(c.withinMs)}`, { lost, duplicates: repeated, withinMs: c.withinMs });
      }
      this.#deadlines.set(key(rule.id, deviceId), at + c.withinMs);
    });
  }

  /** A reading accepted here: its device clock's skew. */
  reading(record: TelemetryRecord): void {
    const rules = this.#rules.get('clock_skew');
    if (!rules || record.skewMs === null) return;
    const skew = record.skewMs;
    void this.#each(rules, record.deviceId, (rule) => {
      const c = rule.condition as Of<'clock_skew'>;
      const off = Math.abs(skew) > c.maxMs;
      this.#set(rule, record.deviceId, off, off ? `device clock ${skew > 0 ? 'behind' : 'ahead'} by ${humanDuration(Math.abs(skew))} (limit ${formatDuration(c.maxMs)})` : 'device clock within limits again', { skewMs: skew });
    });
  }

  /** A health report the device sent. */
  reported(deviceId: string, h: ReportedHealth): void {
    const loop = this.#rules.get('restart_loop');
    if (loop && h.restartLoop !== undefined) {
      void this.#each(loop, deviceId, (rule) =>
        this.#set(rule, deviceId, h.restartLoop === true, h.restartLoop ? `restart loop: ${h.recentRestarts ?? '?'} recent restarts (last: ${h.restartReason ?? '?'})` : 'no restart loop any more', {
          recentRestarts: h.recentRestarts ?? null,
          restartReason: h.restartReason ?? null,
        }),
      );
    }
    const floor = this.deps.minSecurityVersion();
    const sv = h.firmware?.securityVersion;
    const old = this.#rules.get('firmware_security');
    if (old && sv !== undefined && floor > 0) {
      void this.#each(old, deviceId, (rule) =>
        this.#set(rule, deviceId, sv < floor, sv < floor ? `firmware ${h.firmware?.version ?? '?'} has security version ${sv}, below the fleet's minimum ${floor}` : `firmware security version ${sv} meets the minimum ${floor}`, {
          securityVersion: sv,
          minimum: floor,
        }),
      );
    }
    const dropping = this.#rules.get('queue_dropping');
    if (h.queueDropped !== undefined) {
      const before = this.#dropped.get(deviceId);
      this.#dropped.set(deviceId, h.queueDropped);
      // The first report a node sees has nothing to compare with; a reinstalled agent counts from 0 again.
      if (dropping && before !== undefined && h.queueDropped >= before) {
        const lost = h.queueDropped - before;
        void this.#each(dropping, deviceId, (rule) =>
          this.#set(rule, deviceId, lost > 0, lost > 0 ? `the agent dropped ${lost} readings from its offline queue since its last report (${h.queueDropped} in all)` : 'the agent dropped no reading since its last report', {
            dropped: lost,
            total: h.queueDropped,
          }),
        );
      }
    }
  }

  /** A rollout changed state on its own: paused or aborted fire, running or completed clear. */
  rollout(id: string, state: string, reason: string | null): void {
    const rules = this.#rules.get('rollout_stopped');
    if (!rules) return;
    const stopped = state === 'paused' || state === 'aborted';
    for (const rule of rules) this.#set(rule, `rollout:${id}`, stopped, stopped ? `rollout ${id} ${state}: ${reason ?? 'no reason given'}` : `rollout ${id} ${state}`, { rolloutId: id, state, reason });
  }

  /** A condition holds (fire once) or no longer holds (clear once). */
  #set(rule: AlertRule, subject: string, on: boolean, summary: string, details: Readonly<Record<string, unknown>>): void {
    const k = key(rule.id, subject);
    if (on === this.#firing.has(k) && (on || !this.deps.sink.mayBeOpen(rule.id, subject))) return;
    if (on) this.#firing.add(k);
    else this.#firing.delete(k);
    const done = on ? this.deps.sink.fire(rule, subject, summary, details) : this.deps.sink.clear(rule, subject, summary);
    done.catch((err: unknown) => {
      this.deps.onError?.();
      // The subject is a device id, or `rollout:<id>`: a device id is logged as deviceId, the field the log's pseudonyms know.
      const about = typeof details.rolloutId === 'string' && subject === `rollout:${details.rolloutId}` ? { rolloutId: details.rolloutId } : { deviceId: subject };
      this.deps.log.error({ err, ruleId: rule.id, ...about }, 'alerts: could not record a change of a fleet-health alert');
    });
  }

  /** Runs `fn` for each rule whose scope holds the device (its facts read as the evaluator does). */
  async #each(rules: readonly AlertRule[], deviceId: string, fn: (rule: AlertRule) => void): Promise<void> {
    let facts: DeviceFacts = NO_FACTS;
    if (rules.some((r) => needsFacts(r.scope))) {
      try {
        const f = await this.deps.facts(deviceId);
        if (!f) return;
        facts = f;
      } catch {
        this.deps.onError?.();
        return;
      }
    }
    for (const rule of rules) if (inScope(rule.scope, deviceId, facts)) fn(rule);
  }

  async #due(k: string): Promise<void> {
    const i = k.indexOf('\u0000');
    const [ruleId, deviceId] = [k.slice(0, i), k.slice(i + 1)];
    const rule = [...(this.#rules.get('flapping') ?? []), ...(this.#rules.get('dead_letters') ?? []), ...(this.#rules.get('link_quality') ?? [])].find((r) => r.id === ruleId);
    if (!rule) return;
    // A window passed since the last connect, dead letter or lost reading: whatever fired is over.
    if (rule.condition.kind === 'link_quality') {
      const longest = Math.max(...(this.#rules.get('link_quality') ?? []).map((r) => (r.condition as Of<'link_quality'>).withinMs));
      const last = this.#link.get(deviceId)?.at(-1)?.[0];
      if (last === undefined || this.deps.clock.now() - last >= longest) this.#link.delete(deviceId);
    }
    const why = rule.condition.kind === 'flapping' ? 'connection steady again' : rule.condition.kind === 'dead_letters' ? 'no more dead letters than allowed for a minute' : 'no reading lost or repeated for a whole window';
    this.#set(rule, deviceId, false, why, {});
  }

  tick(): void {
    this.#deadlines.run();
  }

  stop(): void {
    this.#deadlines.stop();
  }
}

/** Adds `at` to the device's times, keeping only those within `windowMs` (and at most MAX_KEPT). */
function push(map: Map<string, number[]>, id: string, at: number, windowMs: number): number[] {
  const times = (map.get(id) ?? []).filter((t) => at - t < windowMs);
  times.push(at);
  if (times.length > MAX_KEPT) times.splice(0, times.length - MAX_KEPT);
  map.set(id, times);
  return times;
}
