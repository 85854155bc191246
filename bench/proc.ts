import { readFileSync } from 'node:fs';

/** Process measurements from /proc (Linux), and small statistics helpers. */

const CLK_TCK = 100; // `getconf CLK_TCK` on Linux/x86-64 and arm64

/** User + system CPU time of a process (all its threads), in milliseconds. */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After "pid (comm) ": state is field 3, utime field 14, stime field 15 (1-based).
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
}

/** Resident set size (VmRSS) in kilobytes. */
export function rssKb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) : 0;
}

/** Waits until RSS stops moving (three readings within 0.5%), for at most `maxMs`. */
export async function settledRssKb(pid: number, maxMs = 3000): Promise<number> {
  const started = Date.now();
  const readings: number[] = [rssKb(pid)];
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 150));
    readings.push(rssKb(pid));
    const last = readings.slice(-3);
    const spread = Math.max(...last) - Math.min(...last);
    if ((last.length === 3 && spread <= (last[2] ?? 0) * 0.005) || Date.now() - started > maxMs) return last[last.length - 1] ?? 0;
  }
}

/** Samples a process's RSS periodically and remembers the peak. */
export class RssSampler {
  #peak = 0;
  readonly #timer: NodeJS.Timeout;
  constructor(
    private readonly pid: number,
    everyMs = 200,
  ) {
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), everyMs);
  }
  #sample(): void {
    try {
      this.#peak = Math.max(this.#peak, rssKb(this.pid));
    } catch {
      /* the process is gone; the caller finds out elsewhere */
    }
  }
  stop(): number {
    clearInterval(this.#timer);
    this.#sample();
    return this.#peak;
  }
}

/** Busy CPU time of the whole machine (every core, from /proc/stat), in milliseconds. */
export function machineBusyMs(): number {
  const f = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal ...: busy is all but idle and iowait.
  const busy = f.reduce((a, b) => a + b, 0) - (f[3] ?? 0) - (f[4] ?? 0);
  return (busy * 1000) / CLK_TCK;
}

/** CPU use of a process over a window. */
export class CpuWindow {
  readonly #cpu0: number;
  readonly #machine0 = machineBusyMs();
  readonly #t0 = performance.now();
  readonly #self0 = process.cpuUsage();
  constructor(private readonly pid: number) {
    this.#cpu0 = cpuMs(pid);
  }
  /**
   * Server CPU ms, wall ms, the load generator's own CPU as a share of one core, and what every
   * other process on the machine used meanwhile (other people's work makes a run noisy).
   */
  end(): { serverCpuMs: number; wallMs: number; serverCores: number; loadGenCores: number; otherCores: number } {
    const serverCpuMs = cpuMs(this.pid) - this.#cpu0;
    const wallMs = performance.now() - this.#t0;
    const self = process.cpuUsage(this.#self0);
    const selfMs = (self.user + self.system) / 1000;
    const otherMs = machineBusyMs() - this.#machine0 - serverCpuMs - selfMs;
    return { serverCpuMs, wallMs, serverCores: serverCpuMs / wallMs, loadGenCores: selfMs / wallMs, otherCores: Math.max(0, otherMs / wallMs) };
  }
}

/** Latency samples in milliseconds, kept in a growable typed array. */
export class Samples {
  #data = new Float64Array(1 << 16);
  #n = 0;
  add(v: number): void {
    if (this.#n === this.#data.length) {
      const bigger = new Float64Array(this.#data.length * 2);
      bigger.set(this.#data);
      this.#data = bigger;
    }
    this.#data[this.#n++] = v;
  }
  get count(): number {
    return this.#n;
  }
  clear(): void {
    this.#n = 0;
  }
  max(): number {
    let m = -Infinity;
    for (let i = 0; i < this.#n; i += 1) m = Math.max(m, this.#data[i] ?? -Infinity);
    return m;
  }
  /** p50 and p99 (nearest rank), or null when there are no samples. */
  summary(): { p50: number; p99: number; n: number } | null {
    if (this.#n === 0) return null;
    const sorted = this.#data.slice(0, this.#n).sort();
    const at = (p: number) => sorted[Math.min(this.#n - 1, Math.max(0, Math.ceil(p * this.#n) - 1))] ?? 0;
    return { p50: round(at(0.5), 3), p99: round(at(0.99), 3), n: this.#n };
  }
}

export const round = (v: number, digits = 1): number => Math.round(v * 10 ** digits) / 10 ** digits;

/** Runs `fn` over `items` with at most `limit` running at once. */
export async function pool<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Median of the numbers given (nulls left out); null when there are none. */
export function median(values: readonly (number | null | undefined)[]): number | null {
  const v = values.filter((x): x is number => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? (v[mid] as number) : round(((v[mid - 1] as number) + (v[mid] as number)) / 2, 3);
}
