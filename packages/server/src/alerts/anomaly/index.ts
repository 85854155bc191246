// Online anomaly detection for telemetry series: the per-series detector and the cohort check
// that the alert evaluator runs, and the labelled generator and scorer that measure them.
export type { AnomalyFinding, AnomalyKind, AnomalyVerdict, OnlineDetector, ResolvedDetectorOptions, SeriesDetectorOptions } from './anomaly.js';
export { DEFAULT_DETECTOR_OPTIONS, resolveDetectorOptions } from './anomaly.js';
export { SeriesDetector } from './detectors.js';
export type { CusumState, SeriesDetectorState } from './detector-state.js';
export { DEFAULT_COHORT_OPTIONS, detectCohortOutliers } from './cohort.js';
export type { CohortOptions, CohortOutlier, CohortReport } from './cohort.js';
export { ANOMALY_KINDS, DEFAULT_LAYOUT, DRIFT_READINGS, DRIFT_SLOPE_SIGMA, generateOne, generateSeries } from './generator.js';
export type { AnomalyLabel, GeneratorLayout, LabelledSeries } from './generator.js';
export { DEFAULT_SCORING, scoreRun } from './scoring.js';
export type { ClassScore, RunScore, ScoringOptions } from './scoring.js';
