import type { RuleCondition } from './alerts.js';
import { humanDuration } from './rule-input.js';

/** What one reading did to a rule and device: start firing (with what to say), clear, or nothing new. */
export type Verdict = { readonly fire: string; readonly details: Readonly<Record<string, unknown>> } | { readonly clear: string } | undefined;

/** The field's reading before this one (in the same schema), for rules on change. */
export interface Previous {
  readonly value: number;
  readonly at: number;
}

/**
 * Where a check at rest stays at rest: a threshold not past its limit and not firing, a rate
 * not firing. While readings stay on the safe side of it, observing them changes nothing and
 * says nothing, so the evaluator may skip the check (docs/decisions/0036).
 */
export type Rest = { readonly kind: 'above' | 'below'; readonly limit: number } | { readonly kind: 'rate'; readonly maxPerMinute: number };

/** The per-device state of a telemetry rule; `observe` sees the matching readings in order (all of them, or those that leave its rest). */
export interface SeriesCheck {
  observe(value: number, at: number, previous: Previous | undefined): Verdict;
  /** Its rest, when it is at rest; undefined when it must see every reading. */
  rest(): Rest | undefined;
}

/** Online anomaly detection of one series (alerts/anomaly). */
export interface AnomalyDetector {
  update(value: number): { readonly kind: string; readonly score: number; readonly detail: string } | undefined;
}
export type AnomalyDetectorFactory = (warmup: number) => AnomalyDetector;

const round = (v: number) => Math.round(v * 1000) / 1000;

/**
 * Past the value for the duration; clear once back past the value by the hysteresis. A clear
 * is said once per firing (and once at the start, when an alert from before a restart may be
 * open): a reading within limits costs a comparison, nothing more.
 */
class ThresholdCheck implements SeriesCheck {
  #since: number | null = null;
  /** undefined: not known yet (an alert may be open from before this node saw the device). */
  #firing: boolean | undefined = undefined;
  /** The condition's comparison, and its hysteresis clear, as plain numbers (read on every reading). */
  readonly #above: boolean;
  readonly #inclusive: boolean;
  readonly #limit: number;
  readonly #clearLimit: number;
  readonly #forMs: number;
  readonly #rest: Rest;
  constructor(private readonly c: Extract<RuleCondition, { kind: 'threshold' }>) {
    this.#above = c.op === '>' || c.op === '>=';
    this.#inclusive = c.op === '>=' || c.op === '<=';
    this.#limit = c.value;
    // Hysteresis: back past the limit by the margin, toward the safe side.
    this.#clearLimit = this.#above ? c.value - c.hysteresis : c.value + c.hysteresis;
    this.#forMs = c.forMs;
    this.#rest = { kind: this.#above ? 'above' : 'below', limit: c.value };
  }

  rest(): Rest | undefined {
    return this.#since === null && this.#firing === false ? this.#rest : undefined;
  }

  observe(v: number, at: number): Verdict {
    const limit = this.#limit;
    const past = this.#above ? v > limit || (this.#inclusive && v === limit) : v < limit || (this.#inclusive && v === limit);
    if (past) {
      this.#since ??= at;
      if (!this.#firing && at - this.#since >= this.#forMs) {
        this.#firing = true;
        const { op, value, forMs, field } = this.c;
        return { fire: `${field} ${round(v)} ${op} ${value}${forMs > 0 ? ` for ${humanDuration(at - this.#since)}` : ''}`, details: { field, value: v, since: this.#since } };
      }
      return undefined;
    }
    this.#since = null;
    if (this.#firing === false) return undefined;
    const cleared = this.#above ? v <= this.#clearLimit : v >= this.#clearLimit;
    if (!cleared) return undefined;
    this.#firing = false;
    return { clear: `${this.c.field} ${round(v)} back within ${this.#above ? '≤' : '≥'} ${this.#clearLimit}` };
  }
}

/** Change per minute between consecutive readings; a clear once per firing, as for thresholds. */
class RateCheck implements SeriesCheck {
  #firing: boolean | undefined = undefined;
  readonly #rest: Rest;
  constructor(private readonly c: Extract<RuleCondition, { kind: 'rate' }>) {
    this.#rest = { kind: 'rate', maxPerMinute: c.maxPerMinute };
  }

  rest(): Rest | undefined {
    return this.#firing === false ? this.#rest : undefined;
  }

  observe(v: number, at: number, previous: Previous | undefined): Verdict {
    if (previous === undefined || at <= previous.at) return undefined;
    const perMinute = ((v - previous.value) / (at - previous.at)) * 60_000;
    if (Math.abs(perMinute) > this.c.maxPerMinute) {
      this.#firing = true;
      return { fire: `${this.c.field} changed ${round(perMinute)}/min (limit ±${this.c.maxPerMinute}/min)`, details: { field: this.c.field, perMinute, from: previous.value, to: v } };
    }
    if (this.#firing === false) return undefined;
    this.#firing = false;
    return { clear: `${this.c.field} changes ${round(perMinute)}/min` };
  }
}

/** Readings an anomaly must be absent for before its alert clears. */
const ANOMALY_CLEAR_AFTER = 20;

class AnomalyCheck implements SeriesCheck {
  readonly #detector: AnomalyDetector;
  #quiet = 0;
  constructor(
    private readonly c: Extract<RuleCondition, { kind: 'anomaly' }>,
    make: AnomalyDetectorFactory,
  ) {
    this.#detector = make(c.warmup);
  }

  /** A detector learns from every reading: never at rest. */
  rest(): undefined {
    return undefined;
  }

  observe(v: number): Verdict {
    const found = this.#detector.update(v);
    if (found) {
      this.#quiet = 0;
      return { fire: `${this.c.field}: ${found.kind} (${found.detail})`, details: { field: this.c.field, anomaly: found.kind, score: found.score, value: v } };
    }
    this.#quiet += 1;
    return this.#quiet === ANOMALY_CLEAR_AFTER ? { clear: `${this.c.field} normal for ${ANOMALY_CLEAR_AFTER} readings` } : undefined;
  }
}

/** The reading-driven check of a condition; absence and offline run on deadlines instead. */
export function seriesCheck(c: RuleCondition, anomaly: AnomalyDetectorFactory): SeriesCheck | undefined {
  switch (c.kind) {
    case 'threshold':
      return new ThresholdCheck(c);
    case 'rate':
      return new RateCheck(c);
    case 'anomaly':
      return new AnomalyCheck(c, anomaly);
    default:
      return undefined;
  }
}
