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
export function normalizeTime(onImplausible: () => void, capacity = 100_000): Step {
  const bootStart = new Map<string, { boot: string; startMs: number }>();
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
        bootStart.delete(ctx.request.deviceId);
        bootStart.set(ctx.request.deviceId, { boot: e.boot, startMs: start });
        if (bootStart.size > capacity) bootStart.delete(bootStart.keys().next().value as string);
      }
      const plausible = e.ts !== undefined && e.ts >= EARLIEST_PLAUSIBLE_MS && e.ts <= received + MAX_FUTURE_MS;
      if (e.ts !== undefined && !plausible) onImplausible();
      const ts = plausible ? (e.ts as number) : start !== undefined && e.mono !== undefined ? start + e.mono : received;
      ctx.record = {
        deviceId: ctx.request.deviceId, msgId: e.id, schemaId: e.schema, seq: e.seq ?? null, boot: e.boot ?? null,
        deviceTs: e.ts ?? null, receivedAt: received, ts, skewMs: e.ts === undefined ? null : received - e.ts, data: e.data,
      };
      return undefined;
    },
  };
}
