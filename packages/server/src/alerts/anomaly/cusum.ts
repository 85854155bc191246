/**
 * A two-sided tabular CUSUM (Page, 1954) over standardised residuals z = (x − reference)/σ:
 * S⁺ = max(0, S⁺ + z − k) and S⁻ = max(0, S⁻ − z − k); an alarm when either reaches h.
 * `k` is half the smallest shift worth catching quickly; `h` trades delay against false alarms.
 * Each side also counts the samples since it last stood at zero: the change point's estimate.
 */
export class Cusum {
  upper = 0;
  lower = 0;
  upperRun = 0;
  lowerRun = 0;

  constructor(
    readonly allowance: number,
    readonly threshold: number,
  ) {}

  /** Feeds one residual; +1 or −1 when the upper or lower sum reaches the threshold, else 0. */
  update(z: number): 1 | -1 | 0 {
    this.upper = Math.max(0, this.upper + z - this.allowance);
    this.upperRun = this.upper > 0 ? this.upperRun + 1 : 0;
    this.lower = Math.max(0, this.lower - z - this.allowance);
    this.lowerRun = this.lower > 0 ? this.lowerRun + 1 : 0;
    if (this.upper >= this.threshold && this.upper >= this.lower) return 1;
    if (this.lower >= this.threshold) return -1;
    return 0;
  }

  /** Samples since the alarming side last stood at zero: how long ago the change began. */
  run(side: 1 | -1): number {
    return side === 1 ? this.upperRun : this.lowerRun;
  }

  /** The usual estimate of the shift, in σ: k + S/run, signed. */
  shiftEstimate(side: 1 | -1): number {
    const sum = side === 1 ? this.upper : this.lower;
    const run = Math.max(1, this.run(side));
    return side * (this.allowance + sum / run);
  }

  /** Score of an alarm: the sum over the threshold. */
  score(side: 1 | -1): number {
    return (side === 1 ? this.upper : this.lower) / this.threshold;
  }

  reset(): void {
    this.upper = 0;
    this.lower = 0;
    this.upperRun = 0;
    this.lowerRun = 0;
  }
}
