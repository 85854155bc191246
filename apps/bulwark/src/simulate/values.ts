import { seededRng } from '@bulwark/agent';
import type { FieldSpec } from './scenario.js';

/** A repeatable random source (the agent's mulberry32): the same seed makes the same run. */
export const rng = (seed: number): (() => number) => seededRng(seed);

/** A standard normal draw (Box-Muller). */
export function gaussian(random: () => number): number {
  const u = Math.max(random(), Number.EPSILON);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

/** One device's series of one field: noise around a drifting mean, spikes, and runs of a stuck value. */
export class FieldSeries {
  #n = 0;
  #stuckLeft = 0;
  #stuckValue = 0;
  /** What the series did so far, by kind (the report counts them). */
  readonly made = { spikes: 0, stuckRuns: 0 };

  constructor(
    private readonly spec: FieldSpec,
    private readonly random: () => number,
  ) {}

  next(): number {
    const { spec, random } = this;
    const mean = spec.mean + spec.drift * this.#n;
    this.#n += 1;
    if (this.#stuckLeft > 0) {
      this.#stuckLeft -= 1;
      return this.#stuckValue;
    }
    let value = mean + spec.sigma * gaussian(random);
    if (spec.spike && random() < spec.spike.probability) {
      this.made.spikes += 1;
      value += spec.spike.size * (random() < 0.5 ? -1 : 1);
    }
    value = Math.round(value * 1000) / 1000;
    if (spec.stuck && random() < spec.stuck.probability) {
      // This value, then `length - 1` more of it.
      this.made.stuckRuns += 1;
      this.#stuckLeft = spec.stuck.length - 1;
      this.#stuckValue = value;
    }
    return value;
  }
}

/** Picks `share` of `n` items, repeatably (the same seed and salt choose the same ones). */
export function chooseShare(n: number, share: number, seed: number, salt: number): Set<number> {
  const random = rng(seed ^ Math.imul(salt, 0x9e3779b1));
  const chosen = new Set<number>();
  const want = Math.round(n * share);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < want; i += 1) {
    const j = i + Math.floor(random() * (n - i));
    [order[i], order[j]] = [order[j] as number, order[i] as number];
    chosen.add(order[i] as number);
  }
  return chosen;
}
