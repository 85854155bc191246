import type { Clock } from '@bulwark/core';
import { GenerationalMap } from '@bulwark/core';

/**
 * Per-key token buckets: `ratePerSecond` refill, `burst` capacity. A bucket outlives its
 * session (reconnecting does not refill it); past `capacity` the oldest generation goes.
 */
export class TokenBuckets {
  readonly #buckets: GenerationalMap<string, { tokens: number; at: number }>;

  constructor(private readonly clock: Clock, private readonly ratePerSecond: number, private readonly burst: number, capacity = 100_000) {
    this.#buckets = new GenerationalMap(capacity);
  }

  take(key: string): boolean {
    const now = this.clock.now();
    const b = this.#buckets.get(key) ?? { tokens: this.burst, at: now };
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.ratePerSecond);
    b.at = now;
    const ok = b.tokens >= 1;
    if (ok) b.tokens -= 1;
    this.#buckets.set(key, b);
    return ok;
  }
}
