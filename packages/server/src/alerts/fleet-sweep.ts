import type { Clock, Logger } from '@bulwark/core';
import type { AlertRule, RuleCondition } from './alerts.js';
import { detectCohortOutliers } from './anomaly/index.js';
import { type DeviceFacts, NO_FACTS, type VerdictSink, inScope, needsFacts } from './evaluator.js';
import { formatDuration, humanDuration } from './rule-input.js';

/** A device whose twin disagrees with what is desired, and since when. */
export interface DriftingTwin {
  readonly deviceId: string;
  readonly driftSince: number;
  readonly desiredVersion: number | null;
  readonly reportedVersion: number | null;
  readonly reportedStatus: string | null;
}

/** A device's newest live certificate, ending soon or ended. */
export interface EndingCertificate {
  readonly deviceId: string;
  readonly serial: string;
  readonly notAfter: number;
}

/** A device as a cohort sees it. */
export interface CohortMember {
  readonly id: string;
  readonly model: string | null;
  readonly tags: readonly string[];
  /** Decommissioned: in no cohort. */
  readonly retired: boolean;
}

export interface CohortFilter {
  readonly model?: string;
  readonly tag?: string;
  readonly groups?: readonly string[];
  readonly after?: string;
  readonly limit: number;
}

export interface FleetSweepDeps {
  readonly clock: Clock;
  readonly log: Logger;
  readonly sink: VerdictSink;
  readonly facts: (deviceId: string) => Promise<DeviceFacts | undefined>;
  /** Twins out of sync since `atOrBefore` or earlier, oldest first. */
  readonly drifting: (atOrBefore: number, limit: number) => Promise<readonly DriftingTwin[]>;
  /** Devices whose newest live certificate ends at or before `before`, soonest first. */
  readonly ending: (before: number, limit: number) => Promise<readonly EndingCertificate[]>;
  /** Devices by id (keyset paged with `after`), narrowed to a model or a tag and to those in any of `groups` when given. */
  readonly devices: (filter: CohortFilter) => Promise<readonly CohortMember[]>;
  /** Each device's mean of `field` over its 1-minute rollups from `sinceMs` on. */
  readonly fieldMeans: (deviceIds: readonly string[], field: string, sinceMs: number) => Promise<ReadonlyMap<string, number>>;
  /** Subjects with an alert of the rule open now (any node's). */
  readonly openSubjects: (ruleId: string) => Promise<readonly string[]>;
  readonly onError?: () => void;
}

/** Devices one sweep looks at per rule; more are logged and taken by the next sweeps as the first resolve. */
export const SWEEP_LIMIT = 10_000;

type Of<K extends RuleCondition['kind']> = Extract<RuleCondition, { kind: K }>;

/**
 * Conditions read from what the store holds rather than from one device's traffic: twin drift,
 * certificate expiry, and cohort outliers (a device far from its peers). Run as one node's job (the `alert-sweep` singleton) every
 * sweep interval: each rule fires for the devices in scope that meet it now and clears its open
 * alerts whose devices no longer do. A device that sends nothing costs nothing between sweeps.
 */
export class FleetSweep {
  #drift: AlertRule[] = [];
  #expiry: AlertRule[] = [];
  #cohort: AlertRule[] = [];
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;

  constructor(
    private readonly deps: FleetSweepDeps,
    private readonly intervalMs: number,
  ) {}

  setRules(rules: readonly AlertRule[]): void {
    this.#drift = rules.filter((r) => r.enabled && r.condition.kind === 'twin_drift');
    this.#expiry = rules.filter((r) => r.enabled && r.condition.kind === 'cert_expiry');
    this.#cohort = rules.filter((r) => r.enabled && r.condition.kind === 'cohort');
  }

  start(): void {
    if (this.#timer) return;
    const tick = () => void this.sweep();
    this.#timer = setInterval(tick, this.intervalMs);
    this.#timer.unref();
    tick();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  /** One sweep over every rule (a sweep still under way is waited for, not doubled). */
  sweep(): Promise<void> {
    this.#running ??= this.#sweep().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #sweep(): Promise<void> {
    const now = this.deps.clock.now();
    for (const rule of this.#drift) {
      const c = rule.condition as Of<'twin_drift'>;
      await this.#rule(
        rule,
        async () =>
          (await this.deps.drifting(now - c.forMs, SWEEP_LIMIT)).map((t) => ({
            deviceId: t.deviceId,
            summary: `configuration out of sync for ${humanDuration(now - t.driftSince)} (desired version ${t.desiredVersion ?? '-'}, reported ${t.reportedVersion ?? 'none'}${t.reportedStatus === 'rejected' ? ', rejected' : ''})`,
            details: { driftSince: t.driftSince, desiredVersion: t.desiredVersion, reportedVersion: t.reportedVersion, reportedStatus: t.reportedStatus },
          })),
        'configuration in sync again',
      );
    }
    for (const rule of this.#expiry) {
      const c = rule.condition as Of<'cert_expiry'>;
      await this.#rule(
        rule,
        async () =>
          (await this.deps.ending(now + c.withinMs, SWEEP_LIMIT)).map((cert) => ({
            deviceId: cert.deviceId,
            summary: cert.notAfter <= now ? `certificate ${cert.serial} ended ${humanDuration(now - cert.notAfter)} ago` : `certificate ${cert.serial} ends in ${humanDuration(cert.notAfter - now)} (window ${formatDuration(c.withinMs)})`,
            details: { serial: cert.serial, notAfter: cert.notAfter, withinMs: c.withinMs },
          })),
        'a certificate valid beyond the window is in place',
      );
    }
    for (const rule of this.#cohort) await this.#rule(rule, () => this.#outliers(rule, now), 'back among its peers');
  }

  /** The rule's devices in scope, grouped into cohorts by model or tag, and those far from their cohort's median. */
  async #outliers(rule: AlertRule, now: number): Promise<{ deviceId: string; summary: string; details: Record<string, unknown> }[]> {
    const c = rule.condition as Of<'cohort'>;
    const members = await this.#inScope(rule);
    const means = await this.deps.fieldMeans(
      members.map((m) => m.id),
      c.field,
      now - c.windowMs,
    );
    const cohorts = new Map<string, Map<string, number>>();
    for (const m of members) {
      const mean = means.get(m.id);
      if (mean === undefined) continue;
      const keys = c.by === 'model' ? (m.model === null ? [] : [m.model]) : m.tags.filter((t) => rule.scope.tags.length === 0 || rule.scope.tags.includes(t));
      for (const k of keys) {
        const cohort = cohorts.get(k) ?? new Map<string, number>();
        cohort.set(m.id, mean);
        cohorts.set(k, cohort);
      }
    }
    const found = new Map<string, { deviceId: string; summary: string; details: Record<string, unknown> }>();
    for (const [cohort, values] of cohorts) {
      const report = detectCohortOutliers(values, { thresholdSigma: c.sigma, minCohort: c.minPeers });
      for (const o of report.outliers) {
        if (found.has(o.deviceId)) continue;
        found.set(o.deviceId, {
          deviceId: o.deviceId,
          summary: `${c.field} ${Math.round(o.value * 1000) / 1000} over ${formatDuration(c.windowMs)}: ${o.detail} (${c.by} ${cohort})`,
          details: { field: c.field, value: o.value, score: o.score, by: c.by, cohort, peers: report.size, ...(report.status === 'evaluated' ? { median: report.median, sigma: report.sigma } : {}) },
        });
      }
    }
    return [...found.values()];
  }

  /** Devices in the rule's scope (listed by its models or tags when it names some), at most SWEEP_LIMIT. */
  async #inScope(rule: AlertRule): Promise<CohortMember[]> {
    const { scope } = rule;
    const lists: { model?: string; tag?: string }[] = scope.models.length > 0 ? scope.models.map((model) => ({ model })) : scope.tags.length > 0 ? scope.tags.map((tag) => ({ tag })) : [{}];
    const groups = scope.groups.length > 0 ? { groups: scope.groups } : {};
    const seen = new Map<string, CohortMember>();
    for (const filter of lists) {
      for (let after: string | undefined; seen.size < SWEEP_LIMIT;) {
        const page = await this.deps.devices({ ...filter, ...groups, ...(after !== undefined ? { after } : {}), limit: 1000 });
        // Listed within the scope's groups already: the groups' test is passed.
        for (const d of page) if (!d.retired && inScope(scope, d.id, { ...d, groups: scope.groups })) seen.set(d.id, d);
        if (page.length < 1000) break;
        after = page.at(-1)?.id;
      }
    }
    return [...seen.values()].slice(0, SWEEP_LIMIT);
  }

  /** Fires for what meets the rule now and is not open yet; clears what is open and no longer meets it. */
  async #rule(rule: AlertRule, find: () => Promise<{ deviceId: string; summary: string; details: Record<string, unknown> }[]>, cleared: string): Promise<void> {
    try {
      const [found, open] = await Promise.all([find(), this.deps.openSubjects(rule.id)]);
      if (found.length >= SWEEP_LIMIT) this.deps.log.warn({ ruleId: rule.id, limit: SWEEP_LIMIT }, 'alerts: a sweep found more devices than it looks at at once; the rest come in later sweeps');
      const openSet = new Set(open);
      const meeting = new Set<string>();
      const scoped = needsFacts(rule.scope);
      for (const f of found) {
        const facts = scoped ? await this.deps.facts(f.deviceId) : NO_FACTS;
        if (!facts || !inScope(rule.scope, f.deviceId, facts)) continue;
        meeting.add(f.deviceId);
        if (!openSet.has(f.deviceId)) await this.deps.sink.fire(rule, f.deviceId, f.summary, f.details);
      }
      // What the sweep did not look at (past the limit) is left as it is.
      if (found.length >= SWEEP_LIMIT) return;
      for (const subject of openSet) if (!meeting.has(subject)) await this.deps.sink.clear(rule, subject, cleared);
    } catch (err) {
      this.deps.onError?.();
      this.deps.log.warn({ err: (err as Error).message, ruleId: rule.id }, 'alerts: a fleet sweep failed; trying again at the next one');
    }
  }
}
