import type { Clock } from '@bulwark/core';
import { GenerationalMap } from '@bulwark/core';

/**
 * Per-key token buckets: `ratePerSecond` refill, `burst` capacity. A bucket outlives its
 * session (reconnecting does not refill it); past `capacity` the oldest generation goes.
 * One instance is shared by the device transports (MQTT, HTTPS, CoAP), so a device has one
 * budget whichever way it sends.
 */
export class TokenBuckets {
  readonly #buckets: GenerationalMap<string, { tokens: number; at: number }>;

  constructor(
    private readonly clock: Clock,
    readonly ratePerSecond: number,
    readonly burst: number,
    capacity = 100_000,
  ) {
    this.#buckets = new GenerationalMap(capacity);
  }

  take(key: string): boolean {
    return this.tryTake(key) === 0;
  }

  /** Takes a token and returns 0, or takes nothing and returns how many milliseconds until one is there. */
  tryTake(key: string): number {
    const now = this.clock.now();
    const b = this.#buckets.get(key) ?? { tokens: this.burst, at: now };
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.ratePerSecond);
    b.at = now;
    this.#buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil(((1 - b.tokens) / this.ratePerSecond) * 1000));
  }
}
