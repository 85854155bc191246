import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/**
 * CPU pinning with taskset: the load generator (this process, every thread) on core 1, each
 * broker on core 0, so that the two never take CPU from each other. Off when taskset is
 * missing, when this process may not use both cores 0 and 1, or with --pin off; the reason
 * is reported with the results.
 */

export interface Pinning {
  readonly on: boolean;
  readonly note: string;
}

let state: Pinning = { on: false, note: 'not pinned' };

/** The CPUs a process (or thread) may run on, from /proc (e.g. "0-1" → [0, 1]). */
export function allowedCpus(pid: number | 'self'): number[] {
  const m = /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  const out: number[] = [];
  for (const part of (m?.[1] ?? '').split(',')) {
    const [a, b] = part.split('-').map(Number);
    if (a === undefined || Number.isNaN(a)) continue;
    for (let c = a; c <= (b ?? a); c += 1) out.push(c);
  }
  return out;
}

export function setUpPinning(wanted: boolean): Pinning {
  if (!wanted) return (state = { on: false, note: 'not pinned (--pin off): load generator and brokers share every core' });
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' });
  } catch {
    return (state = { on: false, note: 'not pinned: taskset is not installed (Debian util-linux); load generator and brokers share every core' });
  }
  const cpus = allowedCpus('self');
  if (!cpus.includes(0) || !cpus.includes(1)) {
    return (state = { on: false, note: `not pinned: this process may only use CPUs ${cpus.join(',')}, not both 0 and 1` });
  }
  try {
    // -a: every thread that exists now (V8 and libuv workers); threads made later inherit it.
    execFileSync('taskset', ['-a', '-pc', '1', String(process.pid)], { stdio: 'ignore' });
  } catch (err) {
    return (state = { on: false, note: `not pinned: taskset failed (${(err as Error).message.split('\n')[0]})` });
  }
  const others = cpus.filter((c) => c > 1);
  return (state = {
    on: true,
    note: `taskset: load generator (every thread of the bench process) on core 1, broker process on core 0${others.length ? `; cores ${others.join(',')} unused` : ''}`,
  });
}

export function pinning(): Pinning {
  return state;
}

/** The command line that starts `command` on the broker's core (taskset execs it: the pid is the program's). */
export function onBrokerCore(command: string, args: readonly string[]): [string, string[]] {
  return state.on ? ['taskset', ['-c', '0', command, ...args]] : [command, [...args]];
}
