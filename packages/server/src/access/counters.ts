import type { Clock } from '@bulwark/core';

export interface WindowCount {
  readonly count: number;
  /** When the current window ends, milliseconds since the epoch. */
  readonly resetAtMs: number;
}

/**
 * Fixed-window counters behind rate limits and authentication lock-outs. In embedded mode
 * they live in memory; scale-out puts them in Redis (INCR + PEXPIRE) so every node sees
 * the same counts.
 */
export interface CounterStore {
  increment(key: string, windowMs: number): Promise<WindowCount>;
  /** Takes one off a live window (never below zero, never creating one). */
  decrement(key: string): Promise<void>;
  get(key: string): Promise<WindowCount | undefined>;
  delete(key: string): Promise<void>;
}

/** In-memory counters; bounded: expired windows are swept, and past `maxKeys` the oldest go first. */
export class MemoryCounterStore implements CounterStore {
  readonly #counts = new Map<string, { count: number; resetAtMs: number }>();

  constructor(
    private readonly clock: Clock,
    private readonly maxKeys = 100_000,
  ) {}

  async increment(key: string, windowMs: number): Promise<WindowCount> {
    const now = this.clock.now();
    let entry = this.#counts.get(key);
    if (!entry || entry.resetAtMs <= now) {
      this.#counts.delete(key);
      if (this.#counts.size >= this.maxKeys) this.#evict(now);
      entry = { count: 0, resetAtMs: now + windowMs };
      this.#counts.set(key, entry);
    }
    entry.count += 1;
    return { count: entry.count, resetAtMs: entry.resetAtMs };
  }

  async decrement(key: string): Promise<void> {
    const entry = this.#counts.get(key);
    if (entry && entry.resetAtMs > this.clock.now() && entry.count > 0) entry.count -= 1;
  }

  async get(key: string): Promise<WindowCount | undefined> {
    const entry = this.#counts.get(key);
    if (!entry || entry.resetAtMs <= this.clock.now()) return undefined;
    return { count: entry.count, resetAtMs: entry.resetAtMs };
  }

  async delete(key: string): Promise<void> {
    this.#counts.delete(key);
  }

  get size(): number {
    return this.#counts.size;
  }

  #evict(now: number): void {
    for (const [k, v] of this.#counts) if (v.resetAtMs <= now) this.#counts.delete(k);
    // Still full: drop the oldest insertions (Map keeps insertion order).
    for (const k of this.#counts.keys()) {
      if (this.#counts.size < this.maxKeys) break;
      this.#counts.delete(k);
    }
  }
}
