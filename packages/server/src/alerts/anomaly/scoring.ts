import type { AnomalyKind, OnlineDetector } from './anomaly.js';
import { ANOMALY_KINDS, type LabelledSeries } from './generator.js';

/**
 * How verdicts are scored against labels.
 *
 * - Recall: a label is detected when a verdict (of any kind) falls in [start, end + recallGrace);
 *   it is detected *as its kind* when one of the findings there has its kind. Grace is 0 for
 *   every class by default: the end of a shift or drift is itself a step back, and a verdict
 *   on that step must not count as having seen the anomaly.
 * - False alarms: the readings from `warmup` on are cut into consecutive windows of
 *   `windowReadings`; a window is anomaly-free when it overlaps no [start, end + aftermath);
 *   the rate is the share of anomaly-free windows holding at least one verdict. `aftermath`
 *   is 10 readings after a shift or a drift: both end with a step of 3 to 5σ back to the old
 *   level, which the detector rightly reports (a CUSUM needs 2 to 4 readings for it) and then
 *   re-baselines on (a few readings more). Spikes and stuck runs end without a step: 0.
 * - Stray verdicts: verdicts from `warmup` on outside every [start, end + aftermath), per
 *   1,000 such readings; the false-alarm rate in other units, without the window's rounding.
 */
export interface ScoringOptions {
  readonly warmup: number;
  readonly windowReadings: number;
  readonly recallGrace: Readonly<Record<AnomalyKind, number>>;
  readonly aftermath: Readonly<Record<AnomalyKind, number>>;
}

export const DEFAULT_SCORING: ScoringOptions = Object.freeze({
  warmup: 50,
  windowReadings: 100,
  recallGrace: Object.freeze({ spike: 0, shift: 0, stuck: 0, drift: 0 }),
  aftermath: Object.freeze({ spike: 0, shift: 10, stuck: 0, drift: 10 }),
});

export interface ClassScore {
  readonly labels: number;
  readonly detected: number;
  readonly recall: number;
  /** Share of labels with a finding of their own kind in the span. */
  readonly kindRecall: number;
  /** Readings from the label's start to the first verdict in its span (detected labels only). */
  readonly medianDelay: number;
  readonly p90Delay: number;
}

export interface RunScore {
  readonly series: number;
  readonly readings: number;
  readonly classes: Readonly<Record<AnomalyKind, ClassScore>>;
  /** `byKind`: anomaly-free windows holding a finding of that kind (a window may count for several). */
  readonly falseAlarms: { readonly windows: number; readonly alarmed: number; readonly rate: number; readonly byKind: Readonly<Record<AnomalyKind, number>> };
  readonly stray: { readonly verdicts: number; readonly readings: number; readonly perThousand: number };
  /** Verdicts raised, by the verdict's (first) kind. */
  readonly verdicts: Readonly<Record<AnomalyKind, number>>;
}

const BIT: Record<AnomalyKind, number> = { spike: 1, shift: 2, stuck: 4, drift: 8 };

interface Tally {
  labels: number;
  detected: number;
  kindMatched: number;
  delays: number[];
}

/** Runs a fresh detector from `make` over each series and scores its verdicts against the labels. */
export function scoreRun(series: readonly LabelledSeries[], make: () => OnlineDetector, options: ScoringOptions = DEFAULT_SCORING): RunScore {
  const tallies = Object.fromEntries(ANOMALY_KINDS.map((k) => [k, { labels: 0, detected: 0, kindMatched: 0, delays: [] }])) as unknown as Record<AnomalyKind, Tally>;
  const verdicts: Record<AnomalyKind, number> = { spike: 0, shift: 0, stuck: 0, drift: 0 };
  let windows = 0;
  let alarmed = 0;
  const byKind: Record<AnomalyKind, number> = { spike: 0, shift: 0, stuck: 0, drift: 0 };
  let strayVerdicts = 0;
  let strayReadings = 0;
  let readings = 0;
  for (const s of series) {
    const detector = make();
    const at: number[] = [];
    const kinds: number[] = [];
    for (let i = 0; i < s.values.length; i += 1) {
      const v = detector.update(s.values[i] as number);
      if (v === undefined) continue;
      at.push(i);
      kinds.push(v.findings.reduce((mask, f) => mask | BIT[f.kind], 0));
      verdicts[v.kind] += 1;
    }
    readings += s.values.length;
    for (const label of s.labels) {
      const t = tallies[label.kind];
      t.labels += 1;
      const until = label.end + options.recallGrace[label.kind];
      const first = at.findIndex((i) => i >= label.start && i < until);
      if (first < 0) continue;
      t.detected += 1;
      t.delays.push((at[first] as number) - label.start);
      for (let j = first; j < at.length && (at[j] as number) < until; j += 1) {
        if (((kinds[j] as number) & BIT[label.kind]) !== 0) {
          t.kindMatched += 1;
          break;
        }
      }
    }
    const covered = (from: number, to: number) => s.labels.some((l) => l.start < to && l.end + options.aftermath[l.kind] > from);
    for (let w = options.warmup; w + options.windowReadings <= s.values.length; w += options.windowReadings) {
      const end = w + options.windowReadings;
      if (covered(w, end)) continue;
      windows += 1;
      let mask = 0;
      at.forEach((i, j) => {
        if (i >= w && i < end) mask |= kinds[j] as number;
      });
      if (mask === 0) continue;
      alarmed += 1;
      for (const k of ANOMALY_KINDS) if ((mask & BIT[k]) !== 0) byKind[k] += 1;
    }
    for (let i = options.warmup; i < s.values.length; i += 1) if (!covered(i, i + 1)) strayReadings += 1;
    strayVerdicts += at.filter((i) => i >= options.warmup && !covered(i, i + 1)).length;
  }
  const classes = Object.fromEntries(ANOMALY_KINDS.map((k) => [k, classScore(tallies[k])])) as unknown as Record<AnomalyKind, ClassScore>;
  return {
    series: series.length,
    readings,
    classes,
    falseAlarms: { windows, alarmed, rate: windows === 0 ? 0 : alarmed / windows, byKind },
    stray: { verdicts: strayVerdicts, readings: strayReadings, perThousand: strayReadings === 0 ? 0 : (1000 * strayVerdicts) / strayReadings },
    verdicts,
  };
}

function classScore(t: Tally): ClassScore {
  const delays = [...t.delays].sort((a, b) => a - b);
  const quantile = (q: number) => (delays.length === 0 ? Number.NaN : (delays[Math.min(delays.length - 1, Math.floor(q * delays.length))] as number));
  return {
    labels: t.labels,
    detected: t.detected,
    recall: t.labels === 0 ? Number.NaN : t.detected / t.labels,
    kindRecall: t.labels === 0 ? Number.NaN : t.kindMatched / t.labels,
    medianDelay: quantile(0.5),
    p90Delay: quantile(0.9),
  };
}
