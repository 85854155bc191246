/**
 * Reconnect delays: exponential backoff with full jitter (delay drawn uniformly from
 * [0, min(cap, base * 2^attempt)]), so that a fleet cut off together comes back spread out
 * instead of in one burst. Randomness is injected (a seeded generator in tests).
 */

/** A source of uniform numbers in [0, 1). */
export type Rng = () => number;

/** mulberry32: a small, fast, seedable generator; good enough for jitter, not for secrets. */
export function seededRng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export interface BackoffOptions {
  readonly baseMs: number;
  readonly capMs: number;
}

export class Backoff {
  #attempt = 0;
  readonly #opts: BackoffOptions;
  readonly #rng: Rng;

  constructor(opts: BackoffOptions, rng: Rng = Math.random) {
    if (!(opts.baseMs > 0) || !(opts.capMs >= opts.baseMs)) throw new RangeError('backoff needs 0 < baseMs <= capMs');
    this.#opts = opts;
    this.#rng = rng;
  }

  /** Failed attempts since the last success. */
  get attempt(): number {
    return this.#attempt;
  }

  /** The upper bound of the next delay's window. */
  window(): number {
    return Math.min(this.#opts.capMs, this.#opts.baseMs * 2 ** Math.min(this.#attempt, 40));
  }

  /** The delay before the next attempt; each call widens the window for the one after. */
  next(): number {
    const delay = Math.floor(this.#rng() * this.window());
    this.#attempt += 1;
    return delay;
  }

  /** After a session that lasted: start again from the base window. */
  reset(): void {
    this.#attempt = 0;
  }

  /** Jump to a window at least `ms` wide (a refusal by the server: do not hammer it). */
  atLeast(ms: number): void {
    while (this.window() < Math.min(ms, this.#opts.capMs)) this.#attempt += 1;
  }
}
