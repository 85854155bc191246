/** Residuals and level updates are clipped to this many σ, so one wild reading moves an estimate by a bounded step. */
export const CLIP_SIGMA = 3.5;

/** Residuals waiting this many samples before they count: an alarm in the meantime drops them. */
export const PENDING_SAMPLES = 4;

/**
 * The series' noise σ: a running mean, then an exponentially weighted mean once `horizon`
 * residuals are in, of squared residuals from the local level, each clipped to (3.5σ)². A
 * residual is committed `PENDING_SAMPLES` later, and only while the estimate is not frozen:
 * the detector drops the pending ones and freezes the estimate after a shift or a drift, so the
 * samples around a change (whose residuals measure the change, not the noise) do not inflate σ.
 */
export class NoiseScale {
  variance = 0;
  /** Residuals behind the estimate, capped at the horizon (the EWMA's 1/α). */
  count = 0;
  /** Samples left during which residuals are dropped. */
  frozen = 0;
  private readonly pending = new Float64Array(PENDING_SAMPLES);
  private pendingHead = 0;
  private pendingCount = 0;

  constructor(readonly horizon: number) {}

  get ready(): boolean {
    return this.count > 0 && this.variance > 0;
  }

  get sigma(): number {
    return Math.sqrt(this.variance);
  }

  /**
   * σ raised by one standard error of its estimate, σ·(1 + 1/√(2ν)) with ν the readings behind
   * it (2·horizon for the EWMA once settled): +11 % after a 50-reading warm-up, +3 % settled.
   * The tests use this one, so that a young estimate errs toward silence.
   */
  get cautiousSigma(): number {
    const dof = this.count >= this.horizon ? 2 * this.horizon : Math.max(1, this.count);
    return Math.sqrt(this.variance) * (1 + 1 / Math.sqrt(2 * dof));
  }

  /** Starts the estimate from another one (the window's MAD) worth `count` residuals. */
  seed(sigma: number, count: number): void {
    this.variance = sigma * sigma;
    this.count = Math.min(count, this.horizon);
  }

  /** One sample's squared residual; the oldest pending one is committed if the estimate is not frozen. */
  offer(squared: number): void {
    if (this.pendingCount === PENDING_SAMPLES) {
      const oldest = this.pending[this.pendingHead] as number;
      this.pending[this.pendingHead] = squared;
      this.pendingHead = (this.pendingHead + 1) % PENDING_SAMPLES;
      this.commit(oldest);
    } else {
      this.pending[(this.pendingHead + this.pendingCount) % PENDING_SAMPLES] = squared;
      this.pendingCount += 1;
    }
    this.tick();
  }

  /** A sample that brings no residual (a spike, or too few readings for a local level). */
  tick(): void {
    if (this.frozen > 0) this.frozen -= 1;
  }

  /** Drops the pending residuals and ignores the next `samples` ones. */
  freeze(samples: number): void {
    this.pendingCount = 0;
    this.pendingHead = 0;
    this.frozen = Math.max(this.frozen, samples);
  }

  pendingValues(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.pendingCount; i += 1) out.push(this.pending[(this.pendingHead + i) % PENDING_SAMPLES] as number);
    return out;
  }

  restore(variance: number, count: number, frozen: number, pending: readonly number[]): void {
    this.variance = variance;
    this.count = Math.min(count, this.horizon);
    this.frozen = frozen;
    this.pendingHead = 0;
    this.pendingCount = 0;
    for (const p of pending.slice(-PENDING_SAMPLES)) this.pending[this.pendingCount++] = p;
  }

  private commit(squared: number): void {
    if (this.frozen > 0 || !this.ready || !Number.isFinite(squared)) return;
    this.count = Math.min(this.count + 1, this.horizon);
    const clipped = Math.min(squared, CLIP_SIGMA * CLIP_SIGMA * this.variance);
    this.variance += (clipped - this.variance) / this.count;
  }
}

/**
 * The baseline level the drift test compares against: a clipped running mean of the readings
 * since the last re-baseline, which becomes an exponentially weighted mean with time constant
 * `horizon` once that many are in. Slow on purpose: a drift of 0.05σ a sample moves it by
 * about 0.5σ in 100 samples (α·β·t²/2) once it has settled, while the reading is 5σ away.
 */
export class BaselineLevel {
  mean = 0;
  count = 0;

  constructor(readonly horizon: number) {}

  update(x: number, sigma: number): void {
    this.count = Math.min(this.count + 1, this.horizon);
    let d = x - this.mean;
    if (this.count > 1 && sigma > 0) d = Math.max(-CLIP_SIGMA * sigma, Math.min(CLIP_SIGMA * sigma, d));
    this.mean += d / this.count;
  }

  reset(mean: number, count: number): void {
    this.mean = mean;
    this.count = Math.min(count, this.horizon);
  }
}
