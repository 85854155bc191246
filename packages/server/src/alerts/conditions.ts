import type { RuleCondition } from './alerts.js';
import { humanDuration } from './rule-input.js';

/** What one reading did to a rule and device: start firing (with what to say), clear, or nothing new. */
export type Verdict = { readonly fire: string; readonly details: Readonly<Record<string, unknown>> } | { readonly clear: string } | undefined;

/** The per-device state of a telemetry rule; `observe` sees every matching reading in order. */
export interface SeriesCheck {
  observe(value: number, at: number): Verdict;
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
  constructor(private readonly c: Extract<RuleCondition, { kind: 'threshold' }>) {
    this.#above = c.op === '>' || c.op === '>=';
    this.#inclusive = c.op === '>=' || c.op === '<=';
    this.#limit = c.value;
    // Hysteresis: back past the limit by the margin, toward the safe side.
    this.#clearLimit = this.#above ? c.value - c.hysteresis : c.value + c.hysteresis;
    this.#forMs = c.forMs;
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
  #lastV = Number.NaN;
  #lastAt = 0;
  #firing: boolean | undefined = undefined;
  constructor(private readonly c: Extract<RuleCondition, { kind: 'rate' }>) {}

  observe(v: number, at: number): Verdict {
    const [lastV, lastAt] = [this.#lastV, this.#lastAt];
    this.#lastV = v;
    this.#lastAt = at;
    if (Number.isNaN(lastV) || at <= lastAt) return undefined;
    const perMinute = ((v - lastV) / (at - lastAt)) * 60_000;
    if (Math.abs(perMinute) > this.c.maxPerMinute) {
      this.#firing = true;
      return { fire: `${this.c.field} changed ${round(perMinute)}/min (limit ±${this.c.maxPerMinute}/min)`, details: { field: this.c.field, perMinute, from: lastV, to: v } };
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
