import { type Clock, PlatformError } from '@bulwark/core';
import type { CounterStore } from './counters.js';

export interface ThrottleSettings {
  readonly perAddressPerMinute: number;
  readonly perPrincipalPerMinute: number;
  /** Failed authentications from one address before the address is locked. */
  readonly lockoutThreshold: number;
  /**
   * Failed key exchanges from one address for one key id before that address may no longer
   * try that key (the lower of this and lockoutThreshold applies). A key is never locked
   * for everyone: its id is in every token, so anyone could keep it locked.
   */
  readonly keyLockoutThreshold: number;
  readonly lockoutWindowMs: number;
  readonly lockoutMs: number;
}

const MINUTE_MS = 60_000;

/**
 * Request rate limits (per address and per principal) and the lock-out after repeated
 * failed authentication (per address and per API key). Throws PlatformErrors with
 * retryAfterSeconds, which the HTTP layer turns into 429 + Retry-After.
 */
export class Throttle {
  constructor(
    private readonly counters: CounterStore,
    private readonly settings: ThrottleSettings,
    private readonly clock: Clock,
  ) {}

  async limitAddress(address: string): Promise<void> {
    await this.#limit(`rate:addr:${address}`, this.settings.perAddressPerMinute, 'address');
  }

  async limitPrincipal(principalId: string): Promise<void> {
    await this.#limit(`rate:prin:${principalId}`, this.settings.perPrincipalPerMinute, 'principal');
  }

  async #limit(key: string, max: number, kind: string): Promise<void> {
    const w = await this.counters.increment(key, MINUTE_MS);
    if (w.count > max) {
      throw new PlatformError('BULWARK_ERR_RATE_LIMITED', `rate limit of ${max} requests a minute per ${kind} exceeded`, {
        retryAfterSeconds: this.#secondsUntil(w.resetAtMs),
        details: { limit: max, per: kind },
      });
    }
  }

  /** Lock-out subjects: one address, or one key id tried from one address. */
  static address(address: string): string {
    return `addr:${address}`;
  }

  static addressKey(address: string, keyId: string): string {
    return `addrkey:${address}|${keyId}`;
  }

  /** Throws when the subject (see `address`, `addressKey`) is locked out. */
  async assertNotLocked(subject: string): Promise<void> {
    const lock = await this.counters.get(`lock:${subject}`);
    if (lock) {
      throw new PlatformError('BULWARK_ERR_AUTH_LOCKED', 'too many failed authentication attempts; locked out for now', {
        retryAfterSeconds: this.#secondsUntil(lock.resetAtMs),
      });
    }
  }

  /**
   * Counts an authentication attempt as a failure before its (slow) check runs, so that
   * concurrent guesses cannot all slip in under the threshold; `forgive` takes it back
   * when the attempt succeeds. Throws AUTH_LOCKED (and locks) when the subject already used up its attempts.
   */
  async attempt(subject: string): Promise<void> {
    const w = await this.counters.increment(`fail:${subject}`, this.settings.lockoutWindowMs);
    if (w.count <= this.#threshold(subject)) return;
    await this.counters.delete(`fail:${subject}`);
    await this.counters.increment(`lock:${subject}`, this.settings.lockoutMs);
    await this.assertNotLocked(subject);
  }

  async forgive(subject: string): Promise<void> {
    await this.counters.decrement(`fail:${subject}`);
  }

  /** Counts a failed authentication; returns true when this failure locked the subject. */
  async recordFailure(subject: string): Promise<boolean> {
    const w = await this.counters.increment(`fail:${subject}`, this.settings.lockoutWindowMs);
    if (w.count < this.#threshold(subject)) return false;
    await this.counters.delete(`fail:${subject}`);
    await this.counters.increment(`lock:${subject}`, this.settings.lockoutMs);
    return true;
  }

  #threshold(subject: string): number {
    const { lockoutThreshold, keyLockoutThreshold } = this.settings;
    return subject.startsWith('addrkey:') ? Math.min(keyLockoutThreshold, lockoutThreshold) : lockoutThreshold;
  }

  #secondsUntil(atMs: number): number {
    return Math.max(1, Math.ceil((atMs - this.clock.now()) / 1000));
  }
}
