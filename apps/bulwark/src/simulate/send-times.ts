/**
 * When each reading was handed to its agent, kept per device boot and indexed by the
 * reading's sequence number: 8 bytes a reading, where a map keyed by message id cost about
 * 140 (10,000 devices for 5 minutes: 300,000 readings, 40 MB). The read-back marks each
 * stored reading in the same layout, which tells a reading stored twice and the holes in a
 * boot's sequence without a set of message ids.
 */
export interface SendSeries {
  readonly deviceId: string;
  readonly boot: string;
  /** Sequence number of `times[0]`. */
  readonly base: number;
  /** Milliseconds since the epoch; NaN where no reading of that sequence number was sent. */
  readonly times: Float64Array;
}

interface Series {
  base: number;
  times: Float64Array;
  /** Highest index written, +1. */
  length: number;
  /** 1 where the platform stored the reading (read-back). */
  stored: Uint8Array | undefined;
}

const seriesKey = (deviceId: string, boot: string) => `${deviceId}\n${boot}`;

export class SendTimes {
  readonly #series = new Map<string, Series>();
  #count = 0;

  get size(): number {
    return this.#count;
  }

  add(deviceId: string, boot: string, seq: number, at: number): void {
    const key = seriesKey(deviceId, boot);
    let s = this.#series.get(key);
    if (!s) {
      s = { base: seq, times: new Float64Array(8).fill(Number.NaN), length: 0, stored: undefined };
      this.#series.set(key, s);
    }
    if (seq < s.base) return;
    const i = seq - s.base;
    if (i >= s.times.length) {
      const grown = new Float64Array(Math.max(i + 1, s.times.length * 2)).fill(Number.NaN);
      grown.set(s.times);
      s.times = grown;
    }
    if (Number.isNaN(s.times[i])) this.#count += 1;
    s.times[i] = at;
    s.length = Math.max(s.length, i + 1);
  }

  /** When the reading was sent, or undefined for one this simulator did not send. */
  get(deviceId: string, boot: string, seq: number): number | undefined {
    const s = this.#series.get(seriesKey(deviceId, boot));
    const at = s ? s.times[seq - s.base] : undefined;
    return at === undefined || Number.isNaN(at) ? undefined : at;
  }

  /**
   * Marks a reading the platform stored; 'twice' when it was marked already, 'foreign' when
   * this simulator never sent it.
   */
  markStored(deviceId: string, boot: string, seq: number): 'first' | 'twice' | 'foreign' {
    const s = this.#series.get(seriesKey(deviceId, boot));
    const i = s ? seq - s.base : -1;
    if (!s || i < 0 || i >= s.length || Number.isNaN(s.times[i])) return 'foreign';
    s.stored ??= new Uint8Array(s.length);
    if (s.stored[i] === 1) return 'twice';
    s.stored[i] = 1;
    return 'first';
  }

  /**
   * Readings sent and not stored between the first and the last stored reading of a boot
   * (what the platform would see as holes in the sequence), over every boot of the devices
   * `include` accepts.
   */
  holes(include: (deviceId: string) => boolean): number {
    let holes = 0;
    for (const [key, s] of this.#series) {
      if (!s.stored || !include(key.slice(0, key.indexOf('\n')))) continue;
      const first = s.stored.indexOf(1);
      const last = s.stored.lastIndexOf(1);
      for (let i = first; i <= last; i += 1) if (s.stored[i] === 0 && !Number.isNaN(s.times[i])) holes += 1;
    }
    return holes;
  }

  /** The times, to send to another process (structured clone keeps the typed arrays). */
  toSeries(): SendSeries[] {
    return [...this.#series].map(([key, s]) => {
      const at = key.indexOf('\n');
      return { deviceId: key.slice(0, at), boot: key.slice(at + 1), base: s.base, times: s.times.subarray(0, s.length) };
    });
  }

  addSeries(series: readonly SendSeries[]): void {
    for (const s of series) s.times.forEach((at, i) => Number.isNaN(at) || this.add(s.deviceId, s.boot, s.base + i, at));
  }
}
