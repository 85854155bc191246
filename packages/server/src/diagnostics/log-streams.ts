import { type Clock, PlatformError } from '@bulwark/core';
import { BUILTIN_COMMANDS, DEVICE_MESSAGE_LIMITS, type LogBatch, type LogLevel } from '@bulwark/protocol';
import type { CommandRecord } from './diagnostics.js';
import type { CommandService } from './commands.js';
import type { EventBus, EventOf, RelayedLogEntry } from '../bus/index.js';

export const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error'];

/** A log entry as this node holds it: the entry the nodes pass around, with its device. */
export interface StoredLogEntry extends RelayedLogEntry {
  readonly deviceId: string;
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
 * readers); anything else is counted and dropped. Windows and accepted entries go over the
 * bus, so in a cluster every node holds the same rings: the device may send through any
 * node, and readers may read through any other (entries keep the number the receiving node
 * gave them).
 */
export class LogStreams {
  readonly #rings = new Map<string, Ring>();
  readonly #live = new Map<string, Set<(e: StoredLogEntry) => void>>();

  constructor(
    commands: CommandService,
    private readonly settings: { ringEntries: number; maxStreams: number },
    private readonly clock: Clock,
    private readonly bus: EventBus,
  ) {
    commands.guard(BUILTIN_COMMANDS.logsStream, (deviceId, _name, params) => this.#check(deviceId, params));
    commands.onIssued((c) => this.#announce(c));
    bus.subscribe('logs.window', (e) => void this.#window(e.deviceId, e.until, e.level));
    bus.subscribe('logs.entries', (e) => this.#relayed(e));
    bus.subscribe('device.data-erased', (e) => void this.forget(e.deviceId));
  }

  /** Drops the log lines held for the device (its data was erased); returns how many there were. */
  forget(deviceId: string): number {
    const ring = this.#rings.get(deviceId);
    if (!ring) return 0;
    const n = ring.entries.length;
    ring.entries = [];
    return n;
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

  /** Tells every node (this one first) about the window a command opens or closes, before it is sent. */
  async #announce(c: CommandRecord): Promise<void> {
    if (c.name === BUILTIN_COMMANDS.logsStop) {
      // Batches already on their way still land.
      await this.bus.publish({ type: 'logs.window', deviceId: c.deviceId, until: this.clock.now() + GRACE_MS, level: null });
    } else if (c.name === BUILTIN_COMMANDS.logsStream) {
      const until = c.expiresAt + Number(c.params.durationS) * 1000 + GRACE_MS;
      await this.bus.publish({ type: 'logs.window', deviceId: c.deviceId, until, level: c.params.level as LogLevel });
    }
  }

  #window(deviceId: string, until: number, level: LogLevel | null): Ring | undefined {
    const ring = this.#rings.get(deviceId);
    if (level === null) {
      if (ring) ring.until = Math.min(ring.until, until);
      return ring;
    }
    if (ring) {
      ring.until = until;
      ring.level = level;
      return ring;
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
    const fresh: Ring = { entries: [], seq: 0, until, level, received: 0, dropped: 0 };
    this.#rings.set(deviceId, fresh);
    return fresh;
  }

  /** Entries another node accepted (or this one: those it holds already are skipped by number). */
  #relayed(e: EventOf<'logs.entries'>): void {
    const ring = this.#rings.get(e.deviceId) ?? this.#window(e.deviceId, e.until, e.level);
    if (!ring) return;
    const fresh = e.entries.filter((x) => x.seq > ring.seq);
    if (fresh.length === 0) return;
    ring.dropped += e.dropped;
    this.#append(
      e.deviceId,
      ring,
      fresh.map((x) => ({ deviceId: e.deviceId, ...x })),
    );
  }

  #append(deviceId: string, ring: Ring, entries: readonly StoredLogEntry[]): void {
    const listeners = this.#live.get(deviceId);
    for (const entry of entries) {
      ring.seq = entry.seq;
      ring.received += 1;
      ring.entries.push(entry);
      if (listeners) for (const fn of listeners) fn(entry);
    }
    const over = ring.entries.length - this.settings.ringEntries;
    if (over > 0) {
      ring.entries.splice(0, over);
      ring.dropped += over;
    }
  }

  /** A validated batch from the device; returns the outcome to count. */
  onBatch(deviceId: string, batch: LogBatch): string {
    const ring = this.#rings.get(deviceId);
    const now = this.clock.now();
    if (!ring || ring.until <= now) return 'not_requested';
    const dropped = batch.dropped ?? 0;
    ring.dropped += dropped;
    let seq = ring.seq;
    const entries: StoredLogEntry[] = batch.entries.map((e) => ({ deviceId, seq: (seq += 1), receivedAt: now, ts: e.ts, level: e.level, msg: e.msg, ...(e.data ? { data: e.data } : {}) }));
    this.#append(deviceId, ring, entries);
    const relayed = entries.map(({ deviceId: _, ...rest }) => rest);
    void this.bus.publish({ type: 'logs.entries', deviceId, until: ring.until, level: ring.level, dropped, entries: relayed });
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
