import type { AnomalyKind } from './anomaly.js';
import { deriveSeed, mulberry32, type Rng } from './rng.js';

/** A labelled anomaly: readings `start` (inclusive) to `end` (exclusive) of its series. */
export interface AnomalyLabel {
  readonly kind: AnomalyKind;
  readonly start: number;
  readonly end: number;
  /**
   * Signed size in σ: a spike's distance from the level, a shift's step, a drift's slope per
   * reading; 0 for stuck.
   */
  readonly magnitude: number;
}

export interface LabelledSeries {
  readonly id: string;
  /** The level the noise is drawn around. */
  readonly mean: number;
  readonly values: Float64Array;
  /** In order of `start`; empty for a clean series. */
  readonly labels: readonly AnomalyLabel[];
}

/**
 * How the synthetic series are laid out. Every series is Gaussian noise (σ = 1) around its own
 * level, uniform in ±`meanRange`; a share `cleanShare` of them has no anomaly at all, the others
 * 1 to `maxAnomalies` (uniform) of classes drawn uniformly, so classes mix within a series. The
 * first anomaly starts at `firstStart` + 0..99, after the detector's warm-up (50) and as many
 * readings again of baseline; each anomaly is followed by a gap of `gapMin`..`gapMax` readings
 * of clean noise, and one that would end within `tail` readings of the series' end is left out.
 *
 * - spike: one reading replaced by level ± U(5, 8)σ (its distance from the level is ≥ 5σ);
 * - shift: level ± U(3, 5)σ for U(30, 80) readings, then back;
 * - stuck: U(20, 60) readings repeating the reading before the first (frozen at its last value);
 * - drift: level moving ± 0.05σ a reading for 100 readings (5σ at the end), then back at once, as
 *   when a drifting sensor is recalibrated.
 */
export interface GeneratorLayout {
  readonly length: number;
  readonly cleanShare: number;
  readonly maxAnomalies: number;
  readonly firstStart: number;
  readonly gapMin: number;
  readonly gapMax: number;
  readonly tail: number;
  readonly meanRange: number;
}

export const DEFAULT_LAYOUT: GeneratorLayout = Object.freeze({
  length: 1000,
  cleanShare: 0.2,
  maxAnomalies: 3,
  firstStart: 100,
  gapMin: 100,
  gapMax: 200,
  tail: 50,
  meanRange: 500,
});

export const ANOMALY_KINDS: readonly AnomalyKind[] = Object.freeze(['spike', 'shift', 'stuck', 'drift']);

/** Drift slope in σ per reading, and how long a drift lasts. */
export const DRIFT_SLOPE_SIGMA = 0.05;
export const DRIFT_READINGS = 100;

/** `count` series for `seed`; the same seed and layout give the same series, bit for bit. */
export function generateSeries(seed: number, count: number, layout: Partial<GeneratorLayout> = {}): LabelledSeries[] {
  const l = { ...DEFAULT_LAYOUT, ...layout };
  return Array.from({ length: count }, (_, i) => generateOne(seed, i, l));
}

/** Series `index` of the run seeded with `seed`: it depends on nothing else, so one series replays alone. */
export function generateOne(seed: number, index: number, layout: GeneratorLayout = DEFAULT_LAYOUT): LabelledSeries {
  const rng = mulberry32(deriveSeed(seed, index));
  const mean = rng.uniform(-layout.meanRange, layout.meanRange);
  const values = new Float64Array(layout.length);
  for (let i = 0; i < values.length; i += 1) values[i] = mean + rng.gaussian();
  const labels: AnomalyLabel[] = [];
  if (rng.next() >= layout.cleanShare) {
    const wanted = rng.int(1, layout.maxAnomalies);
    let cursor = layout.firstStart + rng.int(0, 99);
    for (let n = 0; n < wanted; n += 1) {
      const label = place(rng, cursor);
      if (label.end + layout.tail > layout.length) break;
      apply(values, mean, label);
      labels.push(label);
      cursor = label.end + rng.int(layout.gapMin, layout.gapMax);
    }
  }
  return { id: `s${index}`, mean, values, labels };
}

/** Draws an anomaly starting at `start` (not yet applied). */
function place(rng: Rng, start: number): AnomalyLabel {
  const kind = ANOMALY_KINDS[rng.int(0, ANOMALY_KINDS.length - 1)] as AnomalyKind;
  const sign = rng.next() < 0.5 ? -1 : 1;
  switch (kind) {
    case 'spike':
      return { kind, start, end: start + 1, magnitude: sign * rng.uniform(5, 8) };
    case 'shift':
      return { kind, start, end: start + rng.int(30, 80), magnitude: sign * rng.uniform(3, 5) };
    case 'stuck':
      return { kind, start, end: start + rng.int(20, 60), magnitude: 0 };
    case 'drift':
      return { kind, start, end: start + DRIFT_READINGS, magnitude: sign * DRIFT_SLOPE_SIGMA };
  }
}

function apply(values: Float64Array, mean: number, label: AnomalyLabel): void {
  const { kind, start, end, magnitude } = label;
  const frozen = values[start - 1] as number;
  for (let i = start; i < end; i += 1) {
    if (kind === 'spike') values[i] = mean + magnitude;
    else if (kind === 'shift') values[i] = (values[i] as number) + magnitude;
    else if (kind === 'stuck') values[i] = frozen;
    else values[i] = (values[i] as number) + magnitude * (i - start + 1);
  }
}
