import type { Clock } from '@bulwark/core';

/** Per-key token buckets: `ratePerSecond` refill, `burst` capacity. Entries are dropped with their session. */
export class TokenBuckets {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly clock: Clock, private readonly ratePerSecond: number, private readonly burst: number) {}

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

  forget(key: string): void {
    this.#buckets.delete(key);
  }
}
