import { TimeAnswer, type TimeRequest, parseMessage } from '@bulwark/protocol';
import type { AgentClock } from './clock.js';

/**
 * NTP-style offset estimate from the four timestamps of `devices/{id}/time`: t0 device send,
 * t1 platform receive, t2 platform send, t3 device receive. offset = ((t1-t0)+(t2-t3))/2,
 * round trip = (t3-t0)-(t2-t1). The sample with the smallest round trip of the last N is
 * the best (its error is bounded by half its round trip).
 *
 * The estimate is kept against the monotonic clock (platform time = mono + monoOffset), so a
 * reading taken before the first sync of this boot can still be placed once a sync arrives,
 * and a wall clock that jumps does not move it.
 */
export interface TimeSample {
  readonly offsetMs: number;
  readonly rttMs: number;
  /** platform time minus device monotonic time at this sample */
  readonly monoOffsetMs: number;
  readonly atMono: number;
}

export class TimeSync {
  readonly #samples: TimeSample[] = [];
  readonly #keep: number;

  constructor(keep = 8) {
    this.#keep = keep;
  }

  /** Adds one exchange; t0/t3 on the wall clock, monoT0/monoT3 on the monotonic one. Returns the sample, or undefined when implausible. */
  add(t0: number, t1: number, t2: number, t3: number, monoT0: number, monoT3: number): TimeSample | undefined {
    const rttMs = t3 - t0 - (t2 - t1);
    if (![t0, t1, t2, t3].every(Number.isFinite) || rttMs < 0 || t2 < t1) return undefined;
    const offsetMs = (t1 - t0 + (t2 - t3)) / 2;
    // Platform time at the midpoint of the exchange, against the monotonic midpoint.
    const monoOffsetMs = (t1 + t2) / 2 - (monoT0 + monoT3) / 2;
    const sample = { offsetMs, rttMs, monoOffsetMs, atMono: monoT3 };
    this.#samples.push(sample);
    if (this.#samples.length > this.#keep) this.#samples.shift();
    return sample;
  }

  /** The best sample of the last N (smallest round trip), or undefined when never synced. */
  best(): TimeSample | undefined {
    let best: TimeSample | undefined;
    for (const s of this.#samples) if (!best || s.rttMs < best.rttMs) best = s;
    return best;
  }

  get synced(): boolean {
    return this.#samples.length > 0;
  }

  /** Platform time for a monotonic reading of this boot, when synced. */
  platformTime(mono: number): number | undefined {
    const b = this.best();
    return b === undefined ? undefined : Math.round(mono + b.monoOffsetMs);
  }
}

/** Most time requests awaiting a reply; older ones are forgotten (their replies are ignored). */
const MAX_OPEN_REQUESTS = 16;

/**
 * The device side of the exchange on `devices/{id}/time`: makes request payloads, and turns
 * a reply into a sample when it answers a request this boot made (anything else is ignored).
 */
export class TimeExchange {
  /** t0 of each open request → monotonic time it was sent. */
  readonly #open = new Map<number, number>();

  constructor(
    private readonly sync: TimeSync,
    private readonly clock: AgentClock,
  ) {}

  /** The payload of a new TimeRequest, `{"t0": <device wall clock>}`. */
  request(): string {
    let t0 = this.clock.wall();
    while (this.#open.has(t0)) t0 += 1;
    this.#open.set(t0, this.clock.mono());
    if (this.#open.size > MAX_OPEN_REQUESTS) this.#open.delete(this.#open.keys().next().value as number);
    return JSON.stringify({ t0 } satisfies TimeRequest);
  }

  /** A TimeReply `{"t0", "t1", "t2"}`; the new sample, or undefined when it is malformed, a refusal, unknown or implausible. */
  reply(payload: Buffer): TimeSample | undefined {
    const t3 = this.clock.wall();
    const mono3 = this.clock.mono();
    const r = parseMessage(TimeAnswer, payload);
    if (!r) return undefined;
    const mono0 = this.#open.get(r.t0);
    if (mono0 === undefined) return undefined;
    this.#open.delete(r.t0);
    return this.sync.add(r.t0, r.t1, r.t2, t3, mono0, mono3);
  }
}
