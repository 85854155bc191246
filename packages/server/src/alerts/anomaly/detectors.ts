import { type AnomalyFinding, type AnomalyKind, type AnomalyVerdict, type OnlineDetector, type ResolvedDetectorOptions, type SeriesDetectorOptions, resolveDetectorOptions } from './anomaly.js';
import { BaselineLevel, CLIP_SIGMA, NoiseScale } from './baseline.js';
import { Cusum } from './cusum.js';
import { type CusumState, type SeriesDetectorState, parseDetectorState } from './detector-state.js';
import { RollingWindow } from './rolling-window.js';

/** Window readings needed before its median is the local level (and before σ is first estimated). */
const MIN_WINDOW = 16;
/** Readings behind the baseline level before it may stand in for the median (just after a shift). */
const MIN_LEVEL = 8;
/** Readings behind the baseline level before the drift test runs: a young baseline is too noisy for k = 0.75σ. */
const MIN_DRIFT_BASELINE = 32;
/** Window readings needed before the window's MAD may raise the σ the tests use. */
const MIN_MAD_WINDOW = 32;
/**
 * The tests use σ = max(slow σ, 0.8 × the window's MAD-σ). Under steady noise the MAD term
 * rarely binds (a 64-reading MAD-σ is within ±15 % of σ); when the noise has grown it does
 * within half a window, long before the slow σ has caught up, so the tests do not raise a
 * stream of spikes and shifts meanwhile.
 */
const MAD_FLOOR = 0.8;
/** A MAD of 16 readings is worth about 6 readings of a variance estimate (its efficiency is 37 %). */
const MAD_SEED_WEIGHT = 6;
/** Readings the baseline level is set from after a drift alarm (the newest ones, so it lags a ramp by little). */
const DRIFT_REBASE_READINGS = 8;

const PRIORITY: Record<AnomalyKind, number> = { shift: 0, drift: 1, stuck: 2, spike: 3 };

/**
 * Online anomaly detection for one numeric series, fed one reading at a time. Four tests:
 *
 * - **spike**: the reading is ≥ `spikeSigma` σ from the local level (the median of the last
 *   `windowSize` readings) and ≥ `spikeMadSigma` MAD-σ (1.4826·MAD of the window) from it.
 *
 * σ, for every test, is a slow estimate of the noise (clipped squared residuals from the local
 * level over `scaleSamples` readings, frozen around changes), raised by one standard error of
 * that estimate so that a young estimate errs toward silence, and raised to 0.8 × the window's
 * MAD-σ when that is larger, so that noise which has just grown does not raise a stream of
 * verdicts while the slow estimate catches up.
 * - **shift**: a fast two-sided CUSUM (k = `shiftAllowanceSigma`, h = `shiftThresholdSigma`) of
 *   residuals from the local level, clipped to ±3.5σ so that one spike cannot raise it.
 * - **drift**: a slow two-sided CUSUM (k = `driftAllowanceSigma`, h = `driftThresholdSigma`) of
 *   residuals from a baseline level that adapts over `baselineSamples` readings, so a ramp the
 *   rolling median follows still accumulates against it.
 * - **stuck**: `stuckRun` consecutive readings equal, within tolerance, to the first of the run.
 *   Zero variance never moves a z-score, hence a test of its own. Repeated readings are not fed
 *   to the other tests: for a noisy real-valued sensor a repeat carries no news about level or
 *   noise, and keeping a frozen stretch out of the statistics spares them a collapsed σ.
 *
 * After a shift the window, the baseline and the CUSUMs restart from the readings since the
 * change point (the CUSUM's last zero), so one shift raises one verdict and not a stream of
 * them; after a drift the baseline restarts from the newest readings. σ is kept (a level change
 * does not change the noise) and frozen for `windowSize` readings. Non-finite readings are
 * ignored. Per-series state is fixed: two Float64Arrays of `windowSize` plus some numbers.
 */
export class SeriesDetector implements OnlineDetector {
  readonly options: ResolvedDetectorOptions;
  private readonly window: RollingWindow;
  private readonly level: BaselineLevel;
  private readonly scale: NoiseScale;
  private readonly shift: Cusum;
  private readonly drift: Cusum;
  private seen = 0;
  private runValue = Number.NaN;
  private runLength = 0;

  constructor(options: SeriesDetectorOptions = {}) {
    const o = resolveDetectorOptions(options);
    this.options = o;
    this.window = new RollingWindow(o.windowSize);
    this.level = new BaselineLevel(o.baselineSamples);
    this.scale = new NoiseScale(o.scaleSamples);
    this.shift = new Cusum(o.shiftAllowanceSigma, o.shiftThresholdSigma);
    this.drift = new Cusum(o.driftAllowanceSigma, o.driftThresholdSigma);
  }

  /**
   * A detector restored from {@link toJSON}'s output. Anything that is not a valid state for
   * these options (wrong version, a field missing or out of range, a window longer than
   * `windowSize`) gives a fresh detector: losing the learned baseline costs a warm-up, a
   * corrupt baseline would cost wrong verdicts.
   */
  static fromJSON(data: unknown, options: SeriesDetectorOptions = {}): SeriesDetector {
    const detector = new SeriesDetector(options);
    const state = parseDetectorState(data, detector.options.windowSize);
    if (state !== undefined) detector.restore(state);
    return detector;
  }

  /** Finite readings seen so far. */
  get samplesSeen(): number {
    return this.seen;
  }

  /** The current noise estimate σ (0 until known). */
  get sigma(): number {
    return this.scale.ready ? this.scale.sigma : 0;
  }

  /** Feeds the next reading; returns a verdict when this reading is anomalous. */
  update(value: number): AnomalyVerdict | undefined {
    if (!Number.isFinite(value)) return undefined;
    this.seen += 1;
    const armed = this.seen > this.options.warmup;
    if (this.runLength > 0 && Math.abs(value - this.runValue) <= this.stuckTolerance()) {
      this.runLength += 1;
      if (!armed || this.runLength < this.options.stuckRun) return undefined;
      const detail = `${this.runLength} readings equal to ${format(this.runValue)}`;
      return verdict([{ kind: 'stuck', score: this.runLength / this.options.stuckRun, detail }]);
    }
    this.runValue = value;
    this.runLength = 1;
    return this.observe(value, armed);
  }

  toJSON(): SeriesDetectorState {
    const cusum = (c: Cusum): CusumState => [c.upper, c.lower, c.upperRun, c.lowerRun];
    return {
      v: 1,
      seen: this.seen,
      window: this.window.values(),
      level: [this.level.mean, this.level.count],
      scale: { variance: this.scale.variance, count: this.scale.count, frozen: this.scale.frozen, pending: this.scale.pendingValues() },
      shift: cusum(this.shift),
      drift: cusum(this.drift),
      stuck: [this.runLength > 0 ? this.runValue : null, this.runLength],
    };
  }

  private observe(x: number, armed: boolean): AnomalyVerdict | undefined {
    const sigma = this.testSigma();
    const local = this.localLevel();
    let findings: AnomalyFinding[] | undefined; // allocated only when a test fires: most readings raise nothing
    let spike = false;
    let rebase: { kind: 'shift'; run: number } | { kind: 'drift' } | undefined;
    if (armed && sigma > 0 && !Number.isNaN(local)) {
      const z = (x - local) / sigma;
      if (Math.abs(z) >= this.options.spikeSigma && this.madAgrees(x)) {
        spike = true;
        const detail = `${signed(z)}σ from level ${format(local)} (σ ${format(sigma)})`;
        (findings ??= []).push({ kind: 'spike', score: Math.abs(z) / this.options.spikeSigma, detail });
      }
      const side = this.shift.update(clip(z));
      if (side !== 0) {
        const run = this.shift.run(side);
        (findings ??= []).push({ kind: 'shift', score: this.shift.score(side), detail: `level ${signed(this.shift.shiftEstimate(side))}σ over the last ${run} readings` });
        rebase = { kind: 'shift', run };
      }
      if (this.level.count >= MIN_DRIFT_BASELINE) {
        const driftSide = this.drift.update(clip((x - this.level.mean) / sigma));
        if (driftSide !== 0 && rebase === undefined) {
          const offset = this.drift.shiftEstimate(driftSide);
          const run = this.drift.run(driftSide);
          const abrupt = Math.abs(offset) >= this.options.driftAsShiftSigma;
          const detail = `mean ${signed(offset)}σ off baseline ${format(this.level.mean)} over the last ${run} readings`;
          (findings ??= []).push({ kind: abrupt ? 'shift' : 'drift', score: this.drift.score(driftSide), detail });
          rebase = abrupt ? { kind: 'shift', run } : { kind: 'drift' };
        }
      }
    }
    this.learn(x, local, sigma, spike);
    if (rebase?.kind === 'shift') this.rebaseAfterShift(rebase.run);
    else if (rebase?.kind === 'drift') this.rebaseAfterDrift();
    return findings === undefined ? undefined : verdict(findings);
  }

  /** The σ the tests divide by: the cautious slow σ, raised to 0.8 × the MAD-σ if that is larger. 0 while unknown. */
  private testSigma(): number {
    if (!this.scale.ready) return 0;
    const slow = this.scale.cautiousSigma;
    return this.window.count >= MIN_MAD_WINDOW ? Math.max(slow, MAD_FLOOR * this.window.madSigma()) : slow;
  }

  /** The median of the window, or the young baseline just after a shift, or NaN while neither is ready. */
  private localLevel(): number {
    if (this.window.count >= MIN_WINDOW) return this.window.median();
    if (this.level.count >= MIN_LEVEL) return this.level.mean;
    return Number.NaN;
  }

  private madAgrees(x: number): boolean {
    if (this.window.count < MIN_WINDOW) return true;
    const mad = this.window.madSigma();
    return !(mad > 0) || Math.abs(x - this.window.median()) >= this.options.spikeMadSigma * mad;
  }

  private learn(x: number, local: number, sigma: number, spike: boolean): void {
    if (this.scale.ready && !spike && this.window.count >= MIN_WINDOW) {
      // An out-of-sample residual from a median of n readings has variance σ²(1 + π/2n).
      const r = x - local;
      this.scale.offer((r * r) / (1 + Math.PI / (2 * this.window.count)));
    } else {
      this.scale.tick();
    }
    this.window.push(x);
    this.level.update(x, sigma);
    if (!this.scale.ready && this.window.count >= MIN_WINDOW) {
      const s = this.window.madSigma();
      if (s > 0 && Number.isFinite(s * s)) this.scale.seed(s, MAD_SEED_WEIGHT);
    }
  }

  private rebaseAfterShift(run: number): void {
    const since = this.window.newest(Math.max(1, run));
    this.window.reset(since);
    this.level.reset(medianOf(since), since.length);
    this.scale.freeze(this.options.windowSize);
    this.shift.reset();
    this.drift.reset();
  }

  private rebaseAfterDrift(): void {
    const newest = this.window.newest(DRIFT_REBASE_READINGS);
    this.level.reset(newest.reduce((a, b) => a + b, 0) / newest.length, newest.length);
    this.scale.freeze(this.options.windowSize);
    this.drift.reset();
  }

  private stuckTolerance(): number {
    return this.options.stuckTolerance + this.options.stuckToleranceSigma * this.sigma;
  }

  private restore(state: SeriesDetectorState): void {
    this.seen = state.seen;
    this.window.reset(state.window);
    this.level.reset(state.level[0], state.level[1]);
    this.scale.restore(state.scale.variance, state.scale.count, state.scale.frozen, state.scale.pending);
    for (const [cusum, s] of [
      [this.shift, state.shift],
      [this.drift, state.drift],
    ] as const) {
      [cusum.upper, cusum.lower, cusum.upperRun, cusum.lowerRun] = s;
    }
    this.runValue = state.stuck[0] ?? Number.NaN;
    this.runLength = state.stuck[1];
  }
}

function verdict(findings: AnomalyFinding[]): AnomalyVerdict {
  findings.sort((a, b) => PRIORITY[a.kind] - PRIORITY[b.kind]);
  const first = findings[0] as AnomalyFinding;
  return { kind: first.kind, score: first.score, detail: first.detail, findings };
}

const clip = (z: number): number => Math.max(-CLIP_SIGMA, Math.min(CLIP_SIGMA, z));
const signed = (z: number): string => `${z >= 0 ? '+' : ''}${z.toFixed(1)}`;
const format = (x: number): string => Number(x.toPrecision(6)).toString();

function medianOf(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}
