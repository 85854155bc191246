/**
 * Types shared by the online anomaly detectors: what a verdict says and how a detector is tuned.
 * Every threshold is in units of the series' own noise (σ, estimated online), so the defaults
 * hold for any sensor whatever its unit or level.
 */

/** The four things a per-series detector recognises. */
export type AnomalyKind = 'spike' | 'shift' | 'stuck' | 'drift';

/** One test that fired at a sample. */
export interface AnomalyFinding {
  readonly kind: AnomalyKind;
  /** The test statistic over its threshold: 1 at the threshold, larger is stronger. */
  readonly score: number;
  /** For a person: the numbers behind the finding, e.g. `+6.2σ from median 21.4`. */
  readonly detail: string;
}

/**
 * What {@link SeriesDetector.update} returns when a sample is anomalous: the strongest finding
 * by kind (shift, then drift, then stuck, then spike), and every finding of that sample in
 * `findings` (the first one is the verdict itself).
 */
export interface AnomalyVerdict extends AnomalyFinding {
  readonly findings: readonly AnomalyFinding[];
}

/** Something that takes a series one reading at a time: the shape the scorer and the bench drive. */
export interface OnlineDetector {
  update(value: number): AnomalyVerdict | undefined;
}

/** Tuning of a {@link SeriesDetector}; every field is optional and {@link DEFAULT_DETECTOR_OPTIONS} holds the defaults. */
export interface SeriesDetectorOptions {
  /** Finite readings seen before any verdict may be raised. Default 50. */
  readonly warmup?: number;
  /**
   * Readings kept for the rolling median and MAD (two Float64Arrays of this length: 1 KB at the
   * default 64). Also the number of samples the noise scale stays frozen after a shift or drift.
   */
  readonly windowSize?: number;
  /** Spike: |reading − local level| at or above this many σ. Default 4.5. */
  readonly spikeSigma?: number;
  /**
   * Spike, second condition: |reading − window median| at or above this many MAD-σ (1.4826·MAD).
   * Keeps a noise level that has just grown, which the slow σ has not caught up with, from
   * raising spikes. Default 3.5.
   */
  readonly spikeMadSigma?: number;
  /** Shift: allowance k of the fast two-sided CUSUM against the local level, in σ. Default 1.5 (half of a 3σ shift). */
  readonly shiftAllowanceSigma?: number;
  /** Shift: decision threshold h of the fast CUSUM, in σ. Default 4. */
  readonly shiftThresholdSigma?: number;
  /** Drift: allowance k of the slow two-sided CUSUM against the slowly adapting baseline, in σ. Default 0.75. */
  readonly driftAllowanceSigma?: number;
  /** Drift: decision threshold h of the slow CUSUM, in σ. Default 8. */
  readonly driftThresholdSigma?: number;
  /**
   * A slow-CUSUM alarm whose estimated offset (k + S/run) is at least this many σ is an abrupt
   * change the fast CUSUM was a sample late for, and is reported as a shift. Default 2.5.
   */
  readonly driftAsShiftSigma?: number;
  /** Stuck: consecutive readings equal (within tolerance) to the first of the run. Default 10. */
  readonly stuckRun?: number;
  /** Stuck: absolute tolerance for "equal". Default 0 (bit-identical). */
  readonly stuckTolerance?: number;
  /** Stuck: tolerance for "equal" as a share of σ, added to `stuckTolerance` once σ is known. Default 0.001. */
  readonly stuckToleranceSigma?: number;
  /** Time constant, in readings, of the baseline level the drift test compares against. Default 512. */
  readonly baselineSamples?: number;
  /** Time constant, in readings, of the noise scale σ. Default 256. */
  readonly scaleSamples?: number;
}

export type ResolvedDetectorOptions = { readonly [K in keyof SeriesDetectorOptions]-?: NonNullable<SeriesDetectorOptions[K]> };

export const DEFAULT_DETECTOR_OPTIONS: ResolvedDetectorOptions = Object.freeze({
  warmup: 50,
  windowSize: 64,
  spikeSigma: 4.5,
  spikeMadSigma: 3.5,
  shiftAllowanceSigma: 1.5,
  shiftThresholdSigma: 4,
  driftAllowanceSigma: 0.75,
  driftThresholdSigma: 8,
  driftAsShiftSigma: 2.5,
  stuckRun: 10,
  stuckTolerance: 0,
  stuckToleranceSigma: 0.001,
  baselineSamples: 512,
  scaleSamples: 256,
});

const INTEGER_AT_LEAST: Partial<Record<keyof SeriesDetectorOptions, number>> = {
  warmup: 0,
  windowSize: 16,
  stuckRun: 2,
  baselineSamples: 16,
  scaleSamples: 16,
};

/**
 * The defaults with `options` laid over them. A value out of range is a programming error in
 * the caller's configuration and throws a RangeError naming the option.
 */
export function resolveDetectorOptions(options: SeriesDetectorOptions = {}): ResolvedDetectorOptions {
  const out: Record<string, number> = { ...DEFAULT_DETECTOR_OPTIONS };
  for (const [key, value] of Object.entries(options) as [keyof SeriesDetectorOptions, number | undefined][]) {
    if (value === undefined) continue;
    if (!(key in DEFAULT_DETECTOR_OPTIONS)) throw new RangeError(`unknown anomaly detector option ${key}`);
    const min = INTEGER_AT_LEAST[key];
    const ok = min === undefined ? Number.isFinite(value) && value >= 0 : Number.isInteger(value) && value >= min && value <= 1_000_000;
    if (!ok) throw new RangeError(`anomaly detector option ${key} must be ${min === undefined ? 'a finite number ≥ 0' : `an integer ≥ ${min}`}, got ${value}`);
    out[key] = value;
  }
  return Object.freeze(out) as ResolvedDetectorOptions;
}
