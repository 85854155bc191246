import { PENDING_SAMPLES } from './baseline.js';

/** A CUSUM's four numbers: upper sum, lower sum, and the samples since each last stood at zero. */
export type CusumState = readonly [upper: number, lower: number, upperRun: number, lowerRun: number];

/**
 * Everything a {@link SeriesDetector} knows, as plain JSON (about 1.5 KB with the default
 * 64-reading window). The options are not part of it: the caller passes them again on restore.
 */
export interface SeriesDetectorState {
  readonly v: 1;
  /** Finite readings seen. */
  readonly seen: number;
  /** The rolling window, oldest first. */
  readonly window: readonly number[];
  /** Baseline level: mean, readings behind it. */
  readonly level: readonly [mean: number, count: number];
  readonly scale: {
    readonly variance: number;
    readonly count: number;
    readonly frozen: number;
    readonly pending: readonly number[];
  };
  readonly shift: CusumState;
  readonly drift: CusumState;
  /** The current run of equal readings: its first value (null before any reading) and length. */
  readonly stuck: readonly [value: number | null, run: number];
}

const MAX_COUNT = 1e15;
const isCount = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= MAX_COUNT;
const isReal = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
const isNonNegative = (x: unknown): x is number => isReal(x) && x >= 0;
const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const isFiniteArray = (x: unknown, max: number): x is number[] => Array.isArray(x) && x.length <= max && x.every(isReal);

function isCusum(x: unknown): x is CusumState {
  return Array.isArray(x) && x.length === 4 && isNonNegative(x[0]) && isNonNegative(x[1]) && isCount(x[2]) && isCount(x[3]);
}

/**
 * `data` as a detector state if it is one whose window fits `windowSize`, else undefined.
 * Checks every field (types, ranges, finiteness): a state read back from storage may be from
 * another version, truncated, or edited.
 */
export function parseDetectorState(data: unknown, windowSize: number): SeriesDetectorState | undefined {
  if (!isRecord(data) || data.v !== 1 || !isCount(data.seen)) return undefined;
  if (!isFiniteArray(data.window, windowSize)) return undefined;
  const level = data.level;
  if (!Array.isArray(level) || level.length !== 2 || !isReal(level[0]) || !isCount(level[1])) return undefined;
  const scale = data.scale;
  if (!isRecord(scale) || !isNonNegative(scale.variance) || !isCount(scale.count) || !isCount(scale.frozen)) return undefined;
  if (!isFiniteArray(scale.pending, PENDING_SAMPLES) || !scale.pending.every((p) => p >= 0)) return undefined;
  if (!isCusum(data.shift) || !isCusum(data.drift)) return undefined;
  const stuck = data.stuck;
  if (!Array.isArray(stuck) || stuck.length !== 2 || !isCount(stuck[1])) return undefined;
  if (stuck[0] === null ? stuck[1] !== 0 : !isReal(stuck[0]) || stuck[1] === 0) return undefined;
  return data as unknown as SeriesDetectorState;
}
