import type { Logger } from '@bulwark/core';
import { type CountRow, DEVICE_ALERT_STATES, type DeviceRepository, type FleetCounts, HEALTH_BANDS, LIFECYCLE_STATES, type ValueCount } from './registry.js';

const zeros = <K extends string>(keys: readonly K[]): Record<K, number> => Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;

const byCount = (a: ValueCount, b: ValueCount) => b.count - a.count || String(a.value).localeCompare(String(b.value));

/** The counts of every dimension, as the store keeps them, in the shape the API serves. */
export function shapeCounts(rows: readonly CountRow[]): FleetCounts {
  const byState = zeros(LIFECYCLE_STATES);
  const byConnectivity = { online: 0, offline: 0 };
  const byHealth = zeros(HEALTH_BANDS);
  const byAlertState = zeros(DEVICE_ALERT_STATES);
  const byModel: ValueCount[] = [];
  const byFirmware: ValueCount[] = [];
  const fixed: Record<string, Record<string, number>> = { state: byState, connectivity: byConnectivity, health: byHealth, alerts: byAlertState };
  for (const r of rows) {
    const into = fixed[r.dim];
    if (into) {
      if (r.value in into) into[r.value] = r.n;
    } else if (r.dim === 'model' || r.dim === 'firmware') {
      (r.dim === 'model' ? byModel : byFirmware).push({ value: r.value === '' ? null : r.value, count: r.n });
    }
  }
  const total = Object.values(byState).reduce((a, b) => a + b, 0);
  return { total, byState, byConnectivity, byHealth, byAlertState, byModel: byModel.sort(byCount), byFirmware: byFirmware.sort(byCount) };
}

/**
 * Folds the changes the store recorded into its counts, every `intervalMs`: reads stay a
 * sum over a few rows however many devices changed. One node runs it (a singleton job);
 * a fold that fails is retried at the next tick, and the counts stay exact meanwhile (a read
 * adds the changes not folded yet).
 */
export class CountsFolder {
  #timer: ReturnType<typeof setInterval> | undefined;
  #running: Promise<void> | undefined;

  constructor(
    private readonly repo: DeviceRepository,
    private readonly intervalMs: number,
    private readonly log: Logger,
  ) {}

  start(): void {
    if (this.#timer || this.intervalMs <= 0) return;
    this.#timer = setInterval(() => void this.fold(), this.intervalMs);
    this.#timer.unref();
  }

  /** Folds now (unless a fold runs already: then waits for that one). */
  fold(): Promise<void> {
    this.#running ??= this.repo
      .foldCounts()
      .then(
        () => undefined,
        (err: unknown) => this.log.warn({ err }, 'folding the fleet counts failed; the next tick retries (counts stay exact meanwhile)'),
      )
      .finally(() => {
        this.#running = undefined;
      });
    return this.#running;
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }
}
