import { GenerationalMap } from '@bulwark/core';
import type { Step } from '../step.js';

/**
 * Drops a repeat of a recently seen message id before any work is spent on it. This is
 * the fast path: the store's primary key (device, message id) is what guarantees that a
 * repeat is never stored twice, across restarts and nodes.
 */
export function dedupe(onDuplicate: () => void, capacity = 100_000): Step & { remember(deviceId: string, id: string): void } {
  const seen = new GenerationalMap<string, true>(capacity);
  const key = (deviceId: string, id: string) => `${deviceId}\u0000${id}`;
  return {
    name: 'dedupe',
    run(ctx) {
      const e = ctx.envelope;
      if (!e || !seen.has(key(ctx.request.deviceId, e.id))) return undefined;
      onDuplicate();
      return { done: { status: 'duplicate' } };
    },
    remember(deviceId, id) {
      seen.set(key(deviceId, id), true);
    },
  };
}
