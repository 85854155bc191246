import { DEVICE_MESSAGE_LIMITS, type LogBatch, type LogLevel } from '@bulwark/protocol';
import type { Rng } from './backoff.js';

export const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error'];
const rank = (l: LogLevel) => LOG_LEVELS.indexOf(l);

export interface AgentLogger {
  log(level: LogLevel, msg: string, data?: Record<string, unknown>): void;
  debug(msg: string, data?: Record<string, unknown>): void;
  info(msg: string, data?: Record<string, unknown>): void;
  warn(msg: string, data?: Record<string, unknown>): void;
  error(msg: string, data?: Record<string, unknown>): void;
}

type Entry = LogBatch['entries'][number];

/**
 * The agent's logger. Lines at or above `level` go to the local sink (stderr by default).
 * Remote streaming to `devices/{id}/logs` is off until a `logs.stream` command turns it on
 * for a bounded time, at a level and a sampling rate; batches are flushed on an interval,
 * at most `maxEntriesPerSecond` entries a second, and what was left out is counted in
 * `dropped`.
 */
export class RemoteLogs implements AgentLogger {
  readonly #level: LogLevel;
  readonly #sink: (line: string) => void;
  readonly #maxPerSecond: number;
  readonly #rng: Rng;
  readonly #mono: () => number;
  readonly #wall: () => number;
  #stream: { level: LogLevel; sample: number; untilMono: number } | undefined;
  #buffer: Entry[] = [];
  #dropped = 0;
  #windowStart = 0;
  #windowCount = 0;

  constructor(o: { level: LogLevel; maxEntriesPerSecond: number; rng: Rng; mono: () => number; wall: () => number; sink?: (line: string) => void }) {
    this.#level = o.level;
    this.#maxPerSecond = o.maxEntriesPerSecond;
    this.#rng = o.rng;
    this.#mono = o.mono;
    this.#wall = o.wall;
    this.#sink = o.sink ?? ((line) => process.stderr.write(`${line}\n`));
  }

  get streaming(): { level: LogLevel; sample: number; remainingS: number } | undefined {
    const s = this.#stream;
    if (!s || this.#mono() >= s.untilMono) return undefined;
    return { level: s.level, sample: s.sample, remainingS: Math.ceil((s.untilMono - this.#mono()) / 1000) };
  }

  start(level: LogLevel, durationS: number, sample: number): void {
    this.#stream = { level, sample, untilMono: this.#mono() + Math.min(durationS, DEVICE_MESSAGE_LIMITS.logStreamMaxDurationS) * 1000 };
  }

  stop(): void {
    this.#stream = undefined;
  }

  log(level: LogLevel, msg: string, data?: Record<string, unknown>): void {
    const ts = this.#wall();
    if (rank(level) >= rank(this.#level)) this.#sink(JSON.stringify({ ts, level, msg, ...(data ? { data } : {}) }));
    const s = this.#stream;
    if (!s || rank(level) < rank(s.level)) return;
    if (this.#mono() >= s.untilMono) {
      this.#stream = undefined;
      return;
    }
    if (s.sample < 1 && this.#rng() >= s.sample) {
      this.#dropped += 1;
      return;
    }
    const now = this.#mono();
    if (now - this.#windowStart >= 1000) {
      this.#windowStart = now;
      this.#windowCount = 0;
    }
    if (this.#windowCount >= this.#maxPerSecond || this.#buffer.length >= DEVICE_MESSAGE_LIMITS.logBatchMaxEntries * 5) {
      this.#dropped += 1;
      return;
    }
    this.#windowCount += 1;
    this.#buffer.push({ ts, level, msg: msg.slice(0, DEVICE_MESSAGE_LIMITS.logMessageMaxLength), ...(data ? { data } : {}) });
  }

  debug(msg: string, data?: Record<string, unknown>): void {
    this.log('debug', msg, data);
  }
  info(msg: string, data?: Record<string, unknown>): void {
    this.log('info', msg, data);
  }
  warn(msg: string, data?: Record<string, unknown>): void {
    this.log('warn', msg, data);
  }
  error(msg: string, data?: Record<string, unknown>): void {
    this.log('error', msg, data);
  }

  /** The batches to send now (each at most logBatchMaxEntries entries). */
  takeBatches(): LogBatch[] {
    const out: LogBatch[] = [];
    while (this.#buffer.length > 0) {
      const entries = this.#buffer.splice(0, DEVICE_MESSAGE_LIMITS.logBatchMaxEntries);
      out.push(this.#dropped > 0 ? { entries, dropped: this.#dropped } : { entries });
      this.#dropped = 0;
    }
    return out;
  }
}

/** The parameter schema of the built-in `logs.stream` command. */
export const LOGS_STREAM_SCHEMA = {
  type: 'object',
  required: ['level', 'durationS'],
  properties: {
    level: { type: 'string', enum: [...LOG_LEVELS] },
    durationS: { type: 'integer', minimum: 1, maximum: DEVICE_MESSAGE_LIMITS.logStreamMaxDurationS },
    sample: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
  },
} as const;
