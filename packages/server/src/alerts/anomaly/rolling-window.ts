/** 1.4826·MAD estimates σ for Gaussian noise. */
export const MAD_TO_SIGMA = 1.4826;

/**
 * The last `capacity` readings, kept twice: in arrival order (a ring, to know which one leaves)
 * and sorted (for the median in O(1) and the MAD in O(capacity/2)). A push costs one binary
 * search and two short memmoves; memory is fixed at 16 bytes per slot.
 */
export class RollingWindow {
  readonly capacity: number;
  private readonly ring: Float64Array;
  private readonly sorted: Float64Array;
  private head = 0;
  private size = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
    this.ring = new Float64Array(capacity);
    this.sorted = new Float64Array(capacity);
  }

  get count(): number {
    return this.size;
  }

  /** Adds a finite reading, dropping the oldest one when full. */
  push(x: number): void {
    if (this.size === this.capacity) {
      this.removeSorted(this.ring[this.head] as number);
      this.ring[this.head] = x;
      this.head = (this.head + 1) % this.capacity;
    } else {
      this.ring[(this.head + this.size) % this.capacity] = x;
      this.size += 1;
    }
    this.insertSorted(x);
  }

  /** Median of the window; NaN when empty. */
  median(): number {
    const n = this.size;
    if (n === 0) return Number.NaN;
    const mid = n >> 1;
    const upper = this.sorted[mid] as number;
    return n % 2 === 1 ? upper : ((this.sorted[mid - 1] as number) + upper) / 2;
  }

  /** 1.4826 × the median absolute deviation from the median: a robust σ. NaN when empty. */
  madSigma(): number {
    const n = this.size;
    if (n === 0) return Number.NaN;
    const s = this.sorted;
    const med = this.median();
    // Deviations grow outward from the median on both sides: merge the two runs up to the middle one.
    let lo = (n - 1) >> 1;
    let hi = lo + 1;
    const wantLow = (n - 1) >> 1;
    const wantHigh = n >> 1;
    let lowValue = 0;
    for (let taken = 0; taken <= wantHigh; taken += 1) {
      const left = lo >= 0 ? med - (s[lo] as number) : Number.POSITIVE_INFINITY;
      const right = hi < n ? (s[hi] as number) - med : Number.POSITIVE_INFINITY;
      let d: number;
      if (left <= right) {
        d = left;
        lo -= 1;
      } else {
        d = right;
        hi += 1;
      }
      if (taken === wantLow) lowValue = d;
      if (taken === wantHigh) return (MAD_TO_SIGMA * (lowValue + d)) / 2;
    }
    return Number.NaN;
  }

  /** The readings oldest first (for persisting, and for tests). */
  values(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.size; i += 1) out.push(this.ring[(this.head + i) % this.capacity] as number);
    return out;
  }

  /** The newest `n` readings, oldest first. */
  newest(n: number): number[] {
    const all = this.values();
    return all.slice(Math.max(0, all.length - n));
  }

  /** Forgets all but the newest `n` readings (a re-baseline after a level shift). */
  keepNewest(n: number): void {
    this.reset(this.newest(n));
  }

  /** Replaces the content with `values` (oldest first; only the newest `capacity` are kept). */
  reset(values: readonly number[] = []): void {
    this.head = 0;
    this.size = 0;
    for (const v of values.slice(Math.max(0, values.length - this.capacity))) this.push(v);
  }

  private insertSorted(x: number): void {
    const s = this.sorted;
    let lo = 0;
    let hi = this.size - 1; // the ring already counts x; the sorted part holds size - 1 values
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((s[mid] as number) <= x) lo = mid + 1;
      else hi = mid;
    }
    s.copyWithin(lo + 1, lo, this.size - 1);
    s[lo] = x;
  }

  private removeSorted(x: number): void {
    const s = this.sorted;
    let lo = 0;
    let hi = this.size - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((s[mid] as number) < x) lo = mid + 1;
      else hi = mid;
    }
    s.copyWithin(lo, lo + 1, this.size);
  }
}
