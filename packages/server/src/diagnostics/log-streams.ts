import { type Clock, PlatformError } from '@bulwark/core';
import { BUILTIN_COMMANDS, DEVICE_MESSAGE_LIMITS, type LogBatch, type LogLevel } from '@bulwark/protocol';
import type { CommandRecord } from './diagnostics.js';
import type { CommandService } from './commands.js';

export const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error'];

export interface StoredLogEntry {
  readonly deviceId: string;
  /** Per device, increasing; lets a reader continue where it stopped. */
  readonly seq: number;
  readonly receivedAt: number;
  readonly ts: number;
  readonly level: LogLevel;
  readonly msg: string;
  readonly data?: Readonly<Record<string, unknown>>;
}

export interface LogStreamStatus {
  readonly deviceId: string;
  readonly streaming: boolean;
  readonly until: number | null;
  readonly level: LogLevel | null;
  readonly received: number;
  /** Entries the device reported dropping (sampling, rate) plus entries this ring overwrote. */
  readonly dropped: number;
}

interface Ring {
  entries: StoredLogEntry[];
  seq: number;
  until: number;
  level: LogLevel;
  received: number;
  dropped: number;
}

/** In-flight batches may still arrive this long after the device's stream ends. */
const GRACE_MS = 10_000;
/** A logs.stream request not delivered within this is dropped. */
export const LOG_STREAM_TTL_S = 60;

/**
 * Remote logs: an operator opens a bounded window with the built-in `logs.stream` command;
 * batches the device sends inside it go to a bounded in-memory ring per device (and to live
 * readers); anything else is counted and dropped. Rings live in this process only.
 */
export class LogStreams {
  readonly #rings = new Map<string, Ring>();
  readonly #live = new Map<string, Set<(e: StoredLogEntry) => void>>();

  constructor(commands: CommandService, private readonly settings: { ringEntries: number; maxStreams: number }, private readonly clock: Clock) {
    commands.guard(BUILTIN_COMMANDS.logsStream, (deviceId, _name, params) => this.#check(deviceId, params));
    commands.onIssued((c) => this.#opened(c));
  }

  #active(): number {
    const now = this.clock.now();
    let n = 0;
    for (const r of this.#rings.values()) if (r.until > now) n += 1;
    return n;
  }

  #check(deviceId: string, p: Readonly<Record<string, unknown>>): void {
    const problems: string[] = [];
    if (!LOG_LEVELS.includes(p.level as LogLevel)) problems.push(`level must be one of ${LOG_LEVELS.join(', ')}`);
    const d = p.durationS;
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 1 || d > DEVICE_MESSAGE_LIMITS.logStreamMaxDurationS) problems.push(`durationS must be an integer 1..${DEVICE_MESSAGE_LIMITS.logStreamMaxDurationS}`);
    const s = p.sample;
    if (s !== undefined && (typeof s !== 'number' || !(s > 0 && s <= 1))) problems.push('sample must be a number in (0, 1]');
    const extra = Object.keys(p).filter((k) => !['level', 'durationS', 'sample'].includes(k));
    if (extra.length) problems.push(`unknown parameters: ${extra.join(', ')}`);
    if (problems.length) throw new PlatformError('BULWARK_ERR_VALIDATION', `logs.stream: ${problems.join('; ')}`, { details: { problems } });
    const ring = this.#rings.get(deviceId);
    if (!(ring && ring.until > this.clock.now()) && this.#active() >= this.settings.maxStreams) {
      throw new PlatformError('BULWARK_ERR_CONFLICT', `${this.settings.maxStreams} devices are streaming logs already (logs.maxStreams)`);
    }
  }

  #opened(c: CommandRecord): void {
    if (c.name === BUILTIN_COMMANDS.logsStop) {
      const ring = this.#rings.get(c.deviceId);
      // Batches already on their way still land.
      if (ring) ring.until = Math.min(ring.until, this.clock.now() + GRACE_MS);
      return;
    }
    if (c.name !== BUILTIN_COMMANDS.logsStream) return;
    const until = c.expiresAt + Number(c.params.durationS) * 1000 + GRACE_MS;
    const ring = this.#rings.get(c.deviceId);
    if (ring) {
      ring.until = until;
      ring.level = c.params.level as LogLevel;
      return;
    }
    // Bounded: rings of streams that ended go first, oldest first.
    if (this.#rings.size >= this.settings.maxStreams * 2) {
      const now = this.clock.now();
      for (const [id, r] of this.#rings) {
        if (r.until <= now) {
          this.#rings.delete(id);
          break;
        }
      }
    }
    this.#rings.set(c.deviceId, { entries: [], seq: 0, until, level: c.params.level as LogLevel, received: 0, dropped: 0 });
  }

  /** A validated batch from the device; resolves with the outcome to count. */
  onBatch(deviceId: string, batch: LogBatch): string {
    const ring = this.#rings.get(deviceId);
    const now = this.clock.now();
    if (!ring || ring.until <= now) return 'not_requested';
    ring.dropped += batch.dropped ?? 0;
    const listeners = this.#live.get(deviceId);
    for (const e of batch.entries) {
      ring.seq += 1;
      ring.received += 1;
      const entry: StoredLogEntry = { deviceId, seq: ring.seq, receivedAt: now, ts: e.ts, level: e.level, msg: e.msg, ...(e.data ? { data: e.data } : {}) };
      ring.entries.push(entry);
      if (listeners) for (const fn of listeners) fn(entry);
    }
    const over = ring.entries.length - this.settings.ringEntries;
    if (over > 0) {
      ring.entries.splice(0, over);
      ring.dropped += over;
    }
    return 'stored';
  }

  /** Entries at or above `level`, after `afterSeq`, oldest first, at most `limit` (the newest ones). */
  read(deviceId: string, o: { level?: LogLevel; afterSeq?: number; limit: number }): StoredLogEntry[] {
    const min = LOG_LEVELS.indexOf(o.level ?? 'trace');
    const entries = (this.#rings.get(deviceId)?.entries ?? []).filter((e) => LOG_LEVELS.indexOf(e.level) >= min && e.seq > (o.afterSeq ?? 0));
    return entries.slice(-o.limit);
  }

  status(deviceId: string): LogStreamStatus {
    const r = this.#rings.get(deviceId);
    const streaming = r !== undefined && r.until > this.clock.now();
    return { deviceId, streaming, until: r?.until ?? null, level: r?.level ?? null, received: r?.received ?? 0, dropped: r?.dropped ?? 0 };
  }

  /** Calls `fn` with each new entry of the device until the returned function is called. */
  subscribe(deviceId: string, fn: (e: StoredLogEntry) => void): () => void {
    let set = this.#live.get(deviceId);
    if (!set) this.#live.set(deviceId, (set = new Set()));
    set.add(fn);
    return () => {
      set.delete(fn);
      if (set.size === 0) this.#live.delete(deviceId);
    };
  }
}
