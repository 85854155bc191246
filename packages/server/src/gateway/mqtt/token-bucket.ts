import type { Clock } from '@bulwark/core';

/**
 * Per-key token buckets: `ratePerSecond` refill, `burst` capacity. A bucket outlives its
 * session (reconnecting does not refill it); the least recently used go first past `capacity`.
 */
export class TokenBuckets {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly clock: Clock, private readonly ratePerSecond: number, private readonly burst: number, private readonly capacity = 100_000) {}

  take(key: string): boolean {
    const now = this.clock.now();
    const b = this.#buckets.get(key) ?? { tokens: this.burst, at: now };
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.ratePerSecond);
    b.at = now;
    const ok = b.tokens >= 1;
    if (ok) b.tokens -= 1;
    this.#buckets.delete(key);
    this.#buckets.set(key, b);
    if (this.#buckets.size > this.capacity) this.#buckets.delete(this.#buckets.keys().next().value as string);
    return ok;
  }
}
