import type { Device, Load } from './load.js';
import { measureFor } from './load.js';
import { cpuMs, delay, machineBusyMs, Samples } from './proc.js';

/**
 * The cluster phase's load and its CPU accounting: QoS 1 at a fixed offered rate, spread
 * round-robin over every connected device (at most 100 in flight per device, Bulwark's
 * Receive Maximum), and the CPU of groups of processes over the window.
 */

/** A named group of processes whose pids may change during a window (PostgreSQL backends come and go). */
export type PidGroups = Record<string, number[] | (() => Promise<number[]>)>;

const pidsOf = async (list: PidGroups[string]): Promise<number[]> => (typeof list === 'function' ? list() : list);

function cpuOr0(pid: number): number | undefined {
  try {
    return cpuMs(pid);
  } catch {
    return undefined; // gone
  }
}

/** CPU (utime+stime, every thread) per group over a window. A pid that appears during it counts whole; one that ends during it is lost (counted in `gone`). */
export class GroupCpu {
  #start = new Map<string, Map<number, number>>();
  #t0 = 0;
  #machine0 = 0;
  #self0 = process.cpuUsage();

  private constructor(private readonly groups: PidGroups) {}

  static async begin(groups: PidGroups): Promise<GroupCpu> {
    const g = new GroupCpu(groups);
    for (const [name, list] of Object.entries(groups)) {
      const m = new Map<number, number>();
      for (const pid of await pidsOf(list)) {
        const c = cpuOr0(pid);
        if (c !== undefined) m.set(pid, c);
      }
      g.#start.set(name, m);
    }
    g.#t0 = performance.now();
    g.#machine0 = machineBusyMs();
    g.#self0 = process.cpuUsage();
    return g;
  }

  async end(): Promise<{ cpuMs: Record<string, number>; pids: Record<string, number>; gone: number; wallMs: number; loadGenCores: number; otherCores: number }> {
    const wallMs = performance.now() - this.#t0;
    const out: Record<string, number> = {};
    const pids: Record<string, number> = {};
    let gone = 0;
    for (const [name, list] of Object.entries(this.groups)) {
      const before = this.#start.get(name) ?? new Map<number, number>();
      const now = await pidsOf(list);
      let sum = 0;
      for (const pid of now) {
        const c = cpuOr0(pid);
        if (c !== undefined) sum += c - (before.get(pid) ?? 0);
      }
      for (const pid of before.keys()) if (!now.includes(pid)) gone += 1;
      out[name] = sum;
      pids[name] = now.length;
    }
    const self = process.cpuUsage(this.#self0);
    const selfMs = (self.user + self.system) / 1000;
    const measured = Object.values(out).reduce((a, b) => a + b, 0);
    const otherMs = machineBusyMs() - this.#machine0 - measured - selfMs;
    return { cpuMs: out, pids, gone, wallMs, loadGenCores: selfMs / wallMs, otherCores: Math.max(0, otherMs / wallMs) };
  }
}

export interface PacedResult {
  /** PUBACKs of publishes sent and answered within the window. */
  ackedInWindow: number;
  /** Every publish of the phase (warm-up and window), and their PUBACKs and errors once all were answered. */
  sent: number;
  acked: number;
  errors: number;
  /** Offered publishes skipped because the device had 100 in flight (the server fell behind). */
  skipped: number;
  puback: { p50: number; p99: number; n: number } | null;
  /** Publishes sent in the window per second (what the load generator managed to offer), and its longest pause between ticks in the window (ms). */
  sentPerSecInWindow: number;
  tickGapMaxMs: number;
  window: Awaited<ReturnType<GroupCpu['end']>>;
}

/** QoS 1 at `rate` msg/s over every device of `load`: `warmupS`, then a `durationS` window over which `groups` are measured. */
export async function pacedQos1(load: Load, rate: number, warmupS: number, durationS: number, groups: PidGroups, what: string): Promise<PacedResult> {
  const cap = 100;
  let [sent, acked, errors, skipped, ackedInWindow, offered, next] = [0, 0, 0, 0, 0, 0, 0];
  let measuring = false;
  let [sentInWindow, lastTick, tickGapMaxMs] = [0, 0, 0];
  const puback = new Samples();
  const t0 = performance.now();
  const tick = () => {
    const now = performance.now();
    if (measuring && lastTick > 0) tickGapMaxMs = Math.max(tickGapMaxMs, now - lastTick);
    lastTick = now;
    const due = Math.floor(((performance.now() - t0) / 1000) * rate);
    for (; offered < due; offered += 1) {
      const d = load.devices[next++ % load.devices.length] as Device;
      if (d.inflight >= cap) {
        skipped += 1;
        continue;
      }
      const t = performance.now();
      const counted = measuring;
      d.inflight += 1;
      sent += 1;
      if (counted) sentInWindow += 1;
      d.client.publish(d.topic, load.payload(d, false), { qos: 1 }, (err) => {
        d.inflight -= 1;
        if (err) errors += 1;
        else {
          acked += 1;
          if (counted && measuring) {
            ackedInWindow += 1;
            puback.add(performance.now() - t);
          }
        }
      });
    }
  };
  const timer = setInterval(tick, 1);
  await delay(warmupS * 1000);
  skipped = 0;
  const cpu = await GroupCpu.begin(groups);
  measuring = true;
  lastTick = 0;
  await measureFor(durationS, what, () => ackedInWindow);
  measuring = false;
  const window = await cpu.end();
  clearInterval(timer);
  const deadline = performance.now() + 60_000;
  while (acked + errors < sent && performance.now() < deadline) await delay(100);
  return {
    ackedInWindow,
    sent,
    acked,
    errors,
    skipped,
    puback: puback.summary(),
    window,
    sentPerSecInWindow: Math.round(sentInWindow / (window.wallMs / 1000)),
    tickGapMaxMs: Math.round(tickGapMaxMs),
  };
}
