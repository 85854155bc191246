import { type Clock, type Logger, PlatformError } from '@bulwark/core';
import { Redis } from 'ioredis';
import { type CounterStore, MemoryCounterStore, type WindowCount } from './counters.js';

/** INCR the key; the first increment of a window sets its expiry. Returns [count, ms left]. */
const INCREMENT = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {n, ttl}`;
/** Takes one off a live window; never below zero, never creates one. */
const DECREMENT = `
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 0 then redis.call('DECR', KEYS[1]) end
return n`;

const PREFIX = 'bulwark:counter:';
/** A command that takes longer than this counts as Redis being away. */
const COMMAND_TIMEOUT_MS = 500;

export interface RedisCounterOptions {
  readonly clock: Clock;
  readonly log: Logger;
  /** Called when a count fell back to this node's own counters (Redis away). */
  readonly onFallback?: (operation: string) => void;
  /** For rediss:// URLs: CA to verify the server with (else the system's), client certificate and key. PEM contents. */
  readonly tls?: { readonly ca?: string; readonly cert?: string; readonly key?: string };
}

/**
 * Counters shared by every node, in Redis: a fixed window is a key with INCR and PEXPIRE
 * (one Lua script, so the first increment and its expiry are one step). While Redis does not
 * answer, each node counts in memory (per-node limits: a little looser, never none), counts
 * the fallback, and returns to Redis once it answers again.
 */
export class RedisCounterStore implements CounterStore {
  readonly #fallback: MemoryCounterStore;
  #loggedAt = -Infinity;

  private constructor(
    private readonly redis: Redis,
    private readonly options: RedisCounterOptions,
  ) {
    this.#fallback = new MemoryCounterStore(options.clock);
  }

  /** Connects to `url`; fails naming Redis when it does not answer. */
  static async connect(url: string, options: RedisCounterOptions): Promise<RedisCounterStore> {
    const shown = url.replace(/\/\/[^@/]*@/, '//***@');
    const redis = new Redis(url, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      connectTimeout: 5_000,
      commandTimeout: COMMAND_TIMEOUT_MS,
      retryStrategy: (times) => Math.min(times * 200, 2_000),
      ...(url.startsWith('rediss://') && options.tls ? { tls: { ...options.tls } } : {}),
    });
    redis.on('error', (err: Error) => options.log.debug({ err }, 'redis connection error'));
    try {
      await redis.connect();
      await redis.ping();
    } catch (err) {
      redis.disconnect();
      throw new PlatformError('BULWARK_ERR_COUNTERS_UNAVAILABLE', `Redis at ${shown} is unreachable: ${(err as Error).message}`, { cause: err });
    }
    return new RedisCounterStore(redis, options);
  }

  async increment(key: string, windowMs: number): Promise<WindowCount> {
    try {
      const [count, ttl] = (await this.redis.eval(INCREMENT, 1, PREFIX + key, String(windowMs))) as [number, number];
      return { count: Number(count), resetAtMs: this.options.clock.now() + Number(ttl) };
    } catch (err) {
      this.#fellBack('increment', err);
      return this.#fallback.increment(key, windowMs);
    }
  }

  async decrement(key: string): Promise<void> {
    try {
      await this.redis.eval(DECREMENT, 1, PREFIX + key);
    } catch (err) {
      this.#fellBack('decrement', err);
      await this.#fallback.decrement(key);
    }
  }

  async get(key: string): Promise<WindowCount | undefined> {
    try {
      const [count, ttl] = await Promise.all([this.redis.get(PREFIX + key), this.redis.pttl(PREFIX + key)]);
      if (count === null || ttl <= 0) return this.#fallback.get(key);
      return { count: Number(count), resetAtMs: this.options.clock.now() + ttl };
    } catch (err) {
      this.#fellBack('get', err);
      return this.#fallback.get(key);
    }
  }

  async delete(key: string): Promise<void> {
    await this.#fallback.delete(key);
    try {
      await this.redis.del(PREFIX + key);
    } catch (err) {
      this.#fellBack('delete', err);
    }
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }

  #fellBack(operation: string, err: unknown): void {
    this.options.onFallback?.(operation);
    // One line per ten seconds of outage, not one per request.
    const now = this.options.clock.now();
    if (now - this.#loggedAt < 10_000) return;
    this.#loggedAt = now;
    this.options.log.warn({ err: (err as Error).message, operation }, 'Redis did not answer: counting on this node until it does');
  }
}
