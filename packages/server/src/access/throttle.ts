import { type Clock, PlatformError } from '@bulwark/core';
import type { CounterStore, WindowCount } from './counters.js';

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
 * Attempts under way are counted in buckets of this length: an attempt counts from its start
 * to the end of the next bucket (5 to 10 s, far longer than a key check), and counts left by a
 * node that stopped mid-check stop counting as soon (never a lasting block).
 */
const IN_FLIGHT_BUCKET_MS = 5_000;
/** A refusal for attempts under way ends when one of them does. */
const IN_FLIGHT_RETRY_AFTER_S = 1;

/** One authentication attempt admitted by `Throttle.begin`. */
export interface AuthAttempt {
  /** Ends the attempt (once; later calls do nothing); `failed`: its credentials were wrong. Returns the subjects this failure locked. */
  end(failed: boolean): Promise<string[]>;
}

/**
 * Request rate limits (per address and per principal) and the lock-out after repeated
 * failed authentication (per address and per API key), with the attempts under way counted
 * apart from the failures (`begin`). Throws PlatformErrors with
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

  /** Which lock-out a subject is: `address` or `address_key`. */
  static kindOf(subject: string): 'address' | 'address_key' {
    return subject.startsWith('addrkey:') ? 'address_key' : 'address';
  }

  /** Throws when the subject (see `address`, `addressKey`) is locked out. */
  async assertNotLocked(subject: string): Promise<void> {
    const lock = await this.counters.get(`lock:${subject}`);
    if (lock) throw this.#locked(lock);
  }

  #locked(lock: WindowCount): PlatformError {
    return new PlatformError('BULWARK_ERR_AUTH_LOCKED', 'too many failed authentication attempts; locked out for now', {
      retryAfterSeconds: this.#secondsUntil(lock.resetAtMs),
    });
  }

  /**
   * Admits one authentication attempt for each subject before its slow check runs, or
   * refuses it: AUTH_LOCKED while a subject is locked; RATE_LIMITED, without locking, when the
   * subject's failures in the lock-out window plus its attempts under way would exceed its
   * threshold. So at most `threshold` guesses per subject are under way or failed (concurrent
   * guesses cannot all slip in under the threshold), and attempts that succeed never lock
   * anyone out. End the returned attempt once the check is decided, whatever the outcome.
   */
  async begin(subjects: readonly string[]): Promise<AuthAttempt> {
    const counted: string[] = [];
    try {
      for (const subject of subjects) counted.push(await this.#admit(subject));
    } catch (err) {
      await Promise.all(counted.map((key) => this.counters.decrement(key)));
      throw err;
    }
    let ended = false;
    return {
      end: async (failed) => {
        if (ended) return [];
        ended = true;
        const locked: string[] = [];
        try {
          // The failure is counted before the attempt stops being under way, so that a racing
          // attempt always sees it in one count or the other.
          if (failed) for (const subject of subjects) if (await this.recordFailure(subject)) locked.push(subject);
        } finally {
          await Promise.all(counted.map((key) => this.counters.decrement(key)));
        }
        return locked;
      },
    };
  }

  /** Counts the attempt as under way for the subject; returns that counter's key. */
  async #admit(subject: string): Promise<string> {
    const bucket = Math.floor(this.clock.now() / IN_FLIGHT_BUCKET_MS);
    const key = `flight:${subject}:${bucket}`;
    // Count this attempt first, then read the others: of two racing attempts, the later one sees the earlier.
    const mine = await this.counters.increment(key, 3 * IN_FLIGHT_BUCKET_MS);
    const earlier = await this.counters.get(`flight:${subject}:${bucket - 1}`);
    const failed = await this.counters.get(`fail:${subject}`);
    // Read after the failures: a lock is set before its failures are cleared (recordFailure).
    const lock = await this.counters.get(`lock:${subject}`);
    const threshold = this.#threshold(subject);
    let refusal: PlatformError | undefined;
    if (lock) refusal = this.#locked(lock);
    else if (mine.count + (earlier?.count ?? 0) + (failed?.count ?? 0) > threshold) {
      const from = Throttle.kindOf(subject) === 'address_key' ? 'from this address for this key' : 'from this address';
      refusal = new PlatformError('BULWARK_ERR_RATE_LIMITED', `too many authentication attempts under way ${from}; retry in a moment`, {
        retryAfterSeconds: IN_FLIGHT_RETRY_AFTER_S,
        details: { limit: threshold, per: Throttle.kindOf(subject), reason: 'attempts_in_flight' },
      });
    }
    if (refusal) {
      await this.counters.decrement(key);
      throw refusal;
    }
    return key;
  }

  /** Counts a failed authentication; returns true when this failure locked the subject. */
  async recordFailure(subject: string): Promise<boolean> {
    const w = await this.counters.increment(`fail:${subject}`, this.settings.lockoutWindowMs);
    if (w.count < this.#threshold(subject)) return false;
    // Lock first, then clear the failures: a reader that finds them cleared finds the lock.
    await this.counters.increment(`lock:${subject}`, this.settings.lockoutMs);
    await this.counters.delete(`fail:${subject}`);
    return true;
  }

  #threshold(subject: string): number {
    const { lockoutThreshold, keyLockoutThreshold } = this.settings;
    return Throttle.kindOf(subject) === 'address_key' ? Math.min(keyLockoutThreshold, lockoutThreshold) : lockoutThreshold;
  }

  #secondsUntil(atMs: number): number {
    return Math.max(1, Math.ceil((atMs - this.clock.now()) / 1000));
  }
}
