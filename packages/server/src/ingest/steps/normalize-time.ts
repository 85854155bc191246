import { GenerationalMap } from '@bulwark/core';
import type { Step } from '../step.js';

/** Device clocks before this are certainly unset (a 1970 clock after a reboot without sync). */
const EARLIEST_PLAUSIBLE_MS = Date.UTC(2020, 0, 1);
const MAX_FUTURE_MS = 86_400_000;

/**
 * Places each reading in time. A plausible device clock is believed (the difference to the
 * receive time is kept as skew). Otherwise the reading is placed by its monotonic time on
 * the boot's timeline: the boot began, in platform time, no later than the earliest
 * (received - mono) seen for that boot.
 */
export interface ClockSkewTracker {
  /** Devices whose latest skew estimate is beyond the threshold, worst first. */
  skewed(): { deviceId: string; skewMs: number; at: number }[];
}

/**
 * Keeps a per-device estimate of how far its clock is off: the smallest |received - ts| of
 * recent readings (network and queueing delay only ever add to it). A device whose
 * estimate passes `maxSkewMs` is reported by `skewed()` and counted.
 */
export function clockSkew(maxSkewMs: number, onSkewed: () => void, capacity = 100_000): ClockSkewTracker & { observe(deviceId: string, skewMs: number, at: number): void } {
  const estimates = new GenerationalMap<string, { skewMs: number; at: number }>(capacity);
  return {
    observe(deviceId, skewMs, at) {
      const prev = estimates.get(deviceId);
      // A fresh estimate every minute; within a minute keep the reading closest to zero.
      const next = !prev || at - prev.at > 60_000 || Math.abs(skewMs) < Math.abs(prev.skewMs) ? { skewMs, at } : prev;
      if (Math.abs(next.skewMs) > maxSkewMs && (!prev || Math.abs(prev.skewMs) <= maxSkewMs)) onSkewed();
      if (next !== prev) estimates.set(deviceId, next);
    },
    skewed() {
      return estimates
        .entries()
        .filter(([, e]) => Math.abs(e.skewMs) > maxSkewMs)
        .map(([deviceId, e]) => ({ deviceId, ...e }))
        .sort((a, b) => Math.abs(b.skewMs) - Math.abs(a.skewMs));
    },
  };
}

export function normalizeTime(onImplausible: () => void, skew?: { observe(deviceId: string, skewMs: number, at: number): void }, capacity = 100_000): Step {
  const bootStart = new GenerationalMap<string, { boot: string; startMs: number }>(capacity);
  return {
    name: 'normalizeTime',
    run(ctx) {
      const e = ctx.envelope;
      if (!e) return undefined;
      const received = ctx.request.receivedAt;
      let start: number | undefined;
      if (e.mono !== undefined && e.boot !== undefined) {
        const prev = bootStart.get(ctx.request.deviceId);
        start = received - e.mono;
        if (prev && prev.boot === e.boot) start = Math.min(start, prev.startMs);
        if (!prev || prev.boot !== e.boot || prev.startMs !== start) bootStart.set(ctx.request.deviceId, { boot: e.boot, startMs: start });
      }
      const plausible = e.ts !== undefined && e.ts >= EARLIEST_PLAUSIBLE_MS && e.ts <= received + MAX_FUTURE_MS;
      if (e.ts !== undefined && !plausible) onImplausible();
      const ts = plausible ? (e.ts as number) : start !== undefined && e.mono !== undefined ? start + e.mono : received;
      if (plausible) skew?.observe(ctx.request.deviceId, received - (e.ts as number), received);
      ctx.record = {
        deviceId: ctx.request.deviceId,
        msgId: e.id,
        schemaId: e.schema,
        seq: e.seq ?? null,
        boot: e.boot ?? null,
        deviceTs: e.ts ?? null,
        receivedAt: received,
        ts,
        skewMs: e.ts === undefined ? null : received - e.ts,
        data: e.data,
      };
      return undefined;
    },
  };
}
