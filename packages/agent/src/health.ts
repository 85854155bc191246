import { existsSync, readFileSync, statfsSync } from 'node:fs';
import { freemem, loadavg, totalmem } from 'node:os';
import type { HealthReport } from '@bulwark/protocol';
import { writeFileDurableAsync } from './identity.js';

/**
 * Restart bookkeeping in a small state file: when each start happened, whether the last
 * run ended cleanly (a run that did not is counted as a crash), and why the application
 * says it restarted. `threshold` starts within `windowMs` is a restart loop.
 */
interface RestartFile {
  starts: number[];
  running: boolean;
  crashCount: number;
  nextReason?: string;
}

export interface RestartState {
  readonly restartReason: string;
  readonly crashCount: number;
  readonly recentRestarts: number;
  readonly restartLoop: boolean;
}

export class RestartTracker {
  readonly #file: string;
  #data: RestartFile;
  /** Writes in order, off the event loop (many agents in one process start at once). */
  #saving: Promise<void> = Promise.resolve();
  readonly state: RestartState;

  constructor(file: string, now: number, threshold: number, windowMs: number) {
    this.#file = file;
    let prev: RestartFile | undefined;
    try {
      prev = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as RestartFile) : undefined;
    } catch {
      prev = undefined;
    }
    const crashed = prev?.running === true;
    const starts = [...(prev?.starts ?? []).filter((t) => typeof t === 'number' && now - t < windowMs && t <= now), now];
    const reason = prev === undefined ? 'first_start' : crashed ? 'crash' : (prev.nextReason ?? 'restart');
    this.#data = { starts, running: true, crashCount: (prev?.crashCount ?? 0) + (crashed ? 1 : 0) };
    this.state = { restartReason: reason, crashCount: this.#data.crashCount, recentRestarts: starts.length - 1, restartLoop: starts.length >= threshold };
    // A start that a crash ends before this lands is not counted: the loop check errs towards
    // a quieter device, never towards a false restart loop.
    void this.#save().catch(() => undefined);
  }

  /** The reason the next start will report (e.g. `reboot_command`); the run is marked clean on close. */
  async markCleanExit(reason?: string): Promise<void> {
    this.#data = { ...this.#data, running: false, ...(reason ? { nextReason: reason } : {}) };
    await this.#save();
  }

  #save(): Promise<void> {
    const data = JSON.stringify(this.#data);
    this.#saving = this.#saving.catch(() => undefined).then(() => writeFileDurableAsync(this.#file, data));
    return this.#saving;
  }
}

export interface HealthInputs {
  readonly ts: number;
  readonly boot: string;
  readonly uptimeS: number;
  readonly dataDir: string;
  readonly restart: RestartState;
  readonly queueDepth: number;
  /** Readings the offline queue dropped since installation (every reason). */
  readonly queueDropped: number;
  readonly reconnects: number;
  readonly battery?: (() => number | undefined) | undefined;
  readonly firmware?: HealthReport['firmware'] | undefined;
}

/** A health report from what this machine can tell; a source that fails is left out, never guessed. */
export function healthReport(i: HealthInputs): HealthReport {
  let diskFreeBytes: number | undefined;
  try {
    const s = statfsSync(i.dataDir);
    diskFreeBytes = s.bavail * s.bsize;
  } catch {
    diskFreeBytes = undefined;
  }
  let batteryPct: number | undefined;
  try {
    const b = i.battery?.();
    batteryPct = typeof b === 'number' && Number.isFinite(b) ? Math.max(0, Math.min(100, b)) : undefined;
  } catch {
    batteryPct = undefined;
  }
  const total = totalmem();
  return {
    ts: i.ts,
    boot: i.boot,
    uptimeS: Math.round(i.uptimeS),
    cpuLoad1: loadavg()[0] ?? 0,
    memUsedBytes: total - freemem(),
    memTotalBytes: total,
    ...(diskFreeBytes !== undefined ? { diskFreeBytes } : {}),
    ...(batteryPct !== undefined ? { batteryPct } : {}),
    restartReason: i.restart.restartReason,
    crashCount: i.restart.crashCount,
    recentRestarts: i.restart.recentRestarts,
    restartLoop: i.restart.restartLoop,
    queueDepth: i.queueDepth,
    queueDropped: i.queueDropped,
    reconnects: i.reconnects,
    ...(i.firmware ? { firmware: i.firmware } : {}),
  };
}
