import { createHash } from 'node:crypto';
import type { MaintenanceWindow, RolloutGates, RolloutStrategy, WaveCounts } from './ota.js';

/** Pure planning and judging for rollouts: waves from a strategy, windows, gates. */

/**
 * Splits the target into waves. The canary set (when given) is wave 0; the rest is ordered
 * by a hash of rollout id and device id (a fair spread that is the same on every node) and cut
 * at each wave's size: percents are cumulative shares of the target, counts are absolute.
 * Devices the waves leave out form one more, last wave; empty waves are dropped.
 */
export function planWaves(rolloutId: string, deviceIds: readonly string[], strategy: RolloutStrategy): string[][] {
  const canary = (strategy.canary ?? []).filter((id) => deviceIds.includes(id));
  const canarySet = new Set(canary);
  const order = (id: string) => createHash('sha256').update(`${rolloutId}\0${id}`).digest('hex');
  const rest = deviceIds
    .filter((id) => !canarySet.has(id))
    .map((id) => [order(id), id] as const)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([, id]) => id);
  const waves: string[][] = canary.length > 0 ? [canary] : [];
  let taken = 0;
  for (const spec of strategy.waves) {
    const upTo = 'percent' in spec ? Math.ceil((rest.length * Math.min(spec.percent, 100)) / 100) : taken + spec.count;
    const end = Math.min(rest.length, Math.max(upTo, taken));
    waves.push(rest.slice(taken, end));
    taken = end;
  }
  // Whatever the waves left out (they stop short of 100 %) follows as a last wave of its own, behind the same gates.
  if (taken < rest.length) waves.push(rest.slice(taken));
  return waves.filter((w) => w.length > 0);
}

/** Whether `now` falls inside the daily UTC window (always, without one). */
export function inWindow(window: MaintenanceWindow | null, now: number): boolean {
  if (!window) return true;
  const minute = Math.floor((now % 86_400_000) / 60_000);
  const { startMinute: s, endMinute: e } = window;
  return s <= e ? minute >= s && minute < e : minute >= s || minute < e;
}

export interface WaveTally {
  readonly total: number;
  readonly committed: number;
  /** Failed for good (retries spent) or rolled back. */
  readonly failed: number;
  readonly finished: number;
}

export function tally(counts: Readonly<Record<string, number>>): WaveTally {
  const get = (k: string) => counts[k] ?? 0;
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const committed = get('committed');
  const failed = get('failed') + get('rolled-back');
  return { total, committed, failed, finished: committed + failed };
}

export const waveTally = (counts: readonly WaveCounts[], wave: number) => tally(counts.find((c) => c.wave === wave)?.byState ?? {});

/** Most devices read on each side (updated, not updated) when a wave's health is judged. */
export const HEALTH_SAMPLE_SIZE = 200;

export const DEFAULT_SILENT_AFTER_MS = 600_000;

export const silentAfterMs = (g: RolloutGates) => g.silentAfterMs ?? DEFAULT_SILENT_AFTER_MS;

/** Health of a group of devices from their latest reports. */
export interface HealthSample {
  /** Devices with a health report, which the next three describe. */
  readonly devices: number;
  readonly restartLoops: number;
  readonly meanCrashes: number;
  readonly meanReconnects: number;
  /** With the silence gate: devices that could be judged, and how many of them went silent. */
  readonly silence?: { readonly judged: number; readonly silent: number };
  /** With the telemetry gap gate: telemetry senders that could be judged, and how many of them stopped. */
  readonly telemetryGaps?: { readonly judged: number; readonly silent: number };
}

/** The first gate that fails for this wave, as a sentence for the pause/abort reason; undefined when all pass. */
export function failedGate(g: RolloutGates, t: WaveTally, updated?: HealthSample, rest?: HealthSample): string | undefined {
  if (g.maxFailures !== undefined && t.failed > g.maxFailures) return `failure gate: ${t.failed} devices failed, at most ${g.maxFailures} allowed`;
  if (t.finished < g.minDevices) return undefined;
  const failPct = (100 * t.failed) / t.finished;
  if (g.maxFailurePercent !== undefined && failPct > g.maxFailurePercent) {
    return `failure gate: ${t.failed} of ${t.finished} finished devices failed (${failPct.toFixed(1)} %), at most ${g.maxFailurePercent} % allowed`;
  }
  if (g.minSuccessPercent !== undefined && t.finished === t.total) {
    const ok = (100 * t.committed) / t.total;
    if (ok < g.minSuccessPercent) return `success gate: ${ok.toFixed(1)} % of the wave committed, at least ${g.minSuccessPercent} % needed`;
  }
  if (updated && rest && updated.devices > 0) {
    const loopPct = (s: HealthSample) => (s.devices === 0 ? 0 : (100 * s.restartLoops) / s.devices);
    if (g.maxRestartLoopExcessPercent !== undefined && loopPct(updated) - loopPct(rest) > g.maxRestartLoopExcessPercent) {
      return `health gate: ${loopPct(updated).toFixed(1)} % of updated devices are in a restart loop against ${loopPct(rest).toFixed(1)} % of the rest`;
    }
    if (g.maxCrashRatio !== undefined && updated.meanCrashes > g.maxCrashRatio * Math.max(rest.meanCrashes, 0.1)) {
      return `health gate: updated devices crash ${updated.meanCrashes.toFixed(2)} times on average against ${rest.meanCrashes.toFixed(2)} for the rest`;
    }
    if (g.maxReconnectRatio !== undefined && updated.meanReconnects > g.maxReconnectRatio * Math.max(rest.meanReconnects, 0.1)) {
      return `health gate: updated devices reconnect ${updated.meanReconnects.toFixed(2)} times on average against ${rest.meanReconnects.toFixed(2)} for the rest`;
    }
  }
  return silenceGate(g, updated, rest) ?? telemetryGapGate(g, updated, rest);
}

const sharePct = (s: { judged: number; silent: number }) => (s.judged === 0 ? 0 : (100 * s.silent) / s.judged);

/** Judged, like the silence gate, once as many updated telemetry senders as minDevices (or a full sample) can be told apart. */
function telemetryGapGate(g: RolloutGates, updated?: HealthSample, rest?: HealthSample): string | undefined {
  const u = updated?.telemetryGaps;
  const r = rest?.telemetryGaps;
  if (g.maxTelemetryGapExcessPercent === undefined || !u || !r || u.judged < Math.min(g.minDevices, HEALTH_SAMPLE_SIZE)) return undefined;
  if (sharePct(u) - sharePct(r) <= g.maxTelemetryGapExcessPercent) return undefined;
  const quiet = `${Math.round(silentAfterMs(g) / 60_000)} min`;
  return `telemetry gate: ${sharePct(u).toFixed(1)} % of updated devices stopped sending telemetry (none for ${quiet} after their update) against ${sharePct(r).toFixed(1)} % of the rest`;
}

/** Judged once as many updated devices as minDevices (or a full sample) have been quiet long enough to tell. */
function silenceGate(g: RolloutGates, updated?: HealthSample, rest?: HealthSample): string | undefined {
  const u = updated?.silence;
  const r = rest?.silence;
  if (g.maxSilentExcessPercent === undefined || !u || !r || u.judged < Math.min(g.minDevices, HEALTH_SAMPLE_SIZE)) return undefined;
  const pct = (s: { judged: number; silent: number }) => (s.judged === 0 ? 0 : (100 * s.silent) / s.judged);
  if (pct(u) - pct(r) <= g.maxSilentExcessPercent) return undefined;
  const quiet = `${Math.round(silentAfterMs(g) / 60_000)} min`;
  return `health gate: ${pct(u).toFixed(1)} % of updated devices went silent (nothing heard for ${quiet} after their update) against ${pct(r).toFixed(1)} % of the rest`;
}
