import { MAD_TO_SIGMA } from './rolling-window.js';

/** Tuning of {@link detectCohortOutliers}; defaults in {@link DEFAULT_COHORT_OPTIONS}. */
export interface CohortOptions {
  /** A device is an outlier at or above this many robust σ (1.4826·MAD) from the cohort median. Default 5. */
  readonly thresholdSigma?: number;
  /** Fewest devices with a finite reading for any verdict: below it a median says little. Default 5. */
  readonly minCohort?: number;
  /**
   * Smallest spread σ used, in the field's unit (e.g. the sensor's resolution). When most of the
   * cohort reads the same value the MAD is 0 and the fallback spread can be tiny, so that a
   * difference of one least-significant digit would count as far. Default 0.
   */
  readonly minSpread?: number;
}

export const DEFAULT_COHORT_OPTIONS: Required<CohortOptions> = Object.freeze({ thresholdSigma: 5, minCohort: 5, minSpread: 0 });

export interface CohortOutlier {
  readonly deviceId: string;
  readonly value: number;
  /** Signed distance from the cohort median in robust σ. */
  readonly score: number;
  readonly detail: string;
}

export type CohortReport =
  { readonly status: 'too-small'; readonly size: number; readonly outliers: readonly [] } | { readonly status: 'evaluated'; readonly size: number; readonly median: number; readonly sigma: number; readonly outliers: readonly CohortOutlier[] };

/**
 * Devices whose latest reading is far from their peers' (same model or tag): the robust z of
 * each reading, |x − median| / (1.4826·MAD), over the whole cohort. Median and MAD ignore up to
 * half of the cohort being wrong, so one broken device cannot hide itself by moving the centre.
 * When more than half read exactly the same value the MAD is 0; the spread then falls back to
 * 1.2533 × the mean absolute deviation from the median (σ for Gaussian readings), and never
 * goes under `minSpread`. All equal: no outliers. Non-finite readings are left out.
 * Outliers are sorted by decreasing |score|.
 */
export function detectCohortOutliers(latest: ReadonlyMap<string, number> | Readonly<Record<string, number>>, options: CohortOptions = {}): CohortReport {
  const o = { ...DEFAULT_COHORT_OPTIONS, ...options };
  if (!(o.thresholdSigma > 0) || !Number.isInteger(o.minCohort) || o.minCohort < 3 || !(o.minSpread >= 0)) {
    throw new RangeError('cohort options: thresholdSigma > 0, minCohort an integer ≥ 3, minSpread ≥ 0');
  }
  const entries = (latest instanceof Map ? [...latest] : Object.entries(latest)).filter(([, v]) => Number.isFinite(v));
  const size = entries.length;
  if (size < o.minCohort) return { status: 'too-small', size, outliers: [] };
  const values = entries.map(([, v]) => v).sort((a, b) => a - b);
  const median = medianOfSorted(values);
  const deviations = values.map((v) => Math.abs(v - median)).sort((a, b) => a - b);
  let sigma = MAD_TO_SIGMA * medianOfSorted(deviations);
  if (sigma === 0) sigma = (1.2533 * deviations.reduce((a, b) => a + b, 0)) / size;
  sigma = Math.max(sigma, o.minSpread);
  const outliers: CohortOutlier[] = [];
  if (sigma > 0) {
    for (const [deviceId, value] of entries) {
      const score = (value - median) / sigma;
      if (Math.abs(score) < o.thresholdSigma) continue;
      const detail = `${score >= 0 ? '+' : ''}${score.toFixed(1)}σ from the median ${median} of ${size} peers (σ ${sigma.toPrecision(3)})`;
      outliers.push({ deviceId, value, score, detail });
    }
  }
  outliers.sort((a, b) => Math.abs(b.score) - Math.abs(a.score));
  return { status: 'evaluated', size, median, sigma, outliers };
}

function medianOfSorted(s: readonly number[]): number {
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}
