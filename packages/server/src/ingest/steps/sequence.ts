import { GenerationalMap } from '@bulwark/core';
import type { Step } from '../step.js';

/**
 * Counts what the device's per-boot sequence numbers say about the link: a jump forward
 * is messages lost, a step back is a repeat or reordering. It never refuses a message.
 */
export function sequence(counters: { lost(n: number, deviceId: string): void; outOfOrder(): void }, capacity = 100_000): Step {
  const last = new GenerationalMap<string, { readonly boot: string; seq: number }>(capacity);
  return {
    name: 'sequence',
    run(ctx) {
      const e = ctx.envelope;
      if (!e || e.seq === undefined) return undefined;
      const boot = e.boot ?? '';
      const prev = last.get(ctx.request.deviceId);
      if (prev && prev.boot === boot) {
        if (e.seq > prev.seq + 1) counters.lost(e.seq - prev.seq - 1, ctx.request.deviceId);
        else if (e.seq <= prev.seq) counters.outOfOrder();
      }
      // Moving forward on the same boot updates the entry in place: no allocation per message.
      if (!prev || prev.boot !== boot) last.set(ctx.request.deviceId, { boot, seq: e.seq });
      else if (e.seq > prev.seq) prev.seq = e.seq;
      return undefined;
    },
  };
}
