import type { Broker } from './broker.js';
import { progress } from './children.js';
import { cpuMs, round } from './proc.js';

/**
 * Waits until the broker has finished the work of the previous phase, so that a CPU window
 * counts only the phase's own: the process below 5% of a core for two one-second samples in
 * a row and, for Bulwark, no message left in its pipeline (decoding or waiting for a commit).
 */

const IDLE_CORES = 0.05;
/** A process under --cpu-prof never idles below ~0.2 cores (the sampler's own threads): its windows wait for this instead. */
const IDLE_CORES_PROFILED = 0.3;
let idleCores = IDLE_CORES;

/** Called when Bulwark runs with --cpu-prof: a quiet broker is then one under IDLE_CORES_PROFILED. */
export function profiling(): void {
  idleCores = IDLE_CORES_PROFILED;
}
const SAMPLE_MS = 1000;

export interface Drain {
  readonly ms: number;
  readonly drained: boolean;
}

export async function drained(broker: Broker, what: string, maxMs = 120_000): Promise<Drain> {
  const t0 = performance.now();
  let lastNote = t0;
  let quiet = 0;
  let cpu = cpuMs(broker.pid);
  let t = t0;
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, SAMPLE_MS));
    const now = performance.now();
    const c = cpuMs(broker.pid);
    const cores = (c - cpu) / (now - t);
    cpu = c;
    t = now;
    const pending = (await broker.pending?.()) ?? 0;
    quiet = cores < idleCores && pending === 0 ? quiet + 1 : 0;
    if (quiet >= 2) return { ms: round(now - t0, 0), drained: true };
    if (now - t0 > maxMs) {
      progress(`${broker.name}: ${what}: still busy after ${maxMs / 1000} s (${cores.toFixed(2)} cores, ${pending} pending); measuring anyway`);
      return { ms: round(now - t0, 0), drained: false };
    }
    if (now - lastNote > 10_000) {
      progress(`${broker.name}: ${what}: waiting for the broker to drain (${cores.toFixed(2)} cores busy, ${pending} messages pending)`);
      lastNote = now;
    }
  }
}
