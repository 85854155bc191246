import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { ManualClock } from '@bulwark/core';
import type { CounterStore } from './counters.js';

/**
 * The contract every CounterStore passes (memory and Redis). The Redis store keeps its
 * windows with Redis's own clock, so the suite waits out real (short) windows rather than
 * moving a manual clock.
 */
export function describeCounterContract(name: string, make: (clock: ManualClock) => Promise<{ counters: CounterStore; close(): Promise<void> }>, options: { realTime: boolean }): void {
  describe(`${name}: counter store contract`, () => {
    const key = () => `k-${randomBytes(4).toString('hex')}`;
    const pass = async (clock: ManualClock, ms: number) => {
      if (options.realTime) await new Promise((r) => setTimeout(r, ms));
      clock.advance(ms);
    };

    it('counts within a window and starts over after it', async () => {
      const clock = new ManualClock(1_000_000);
      const { counters, close } = await make(clock);
      try {
        const k = key();
        const first = await counters.increment(k, 200);
        assert.equal(first.count, 1);
        assert.ok(first.resetAtMs > clock.now() && first.resetAtMs <= clock.now() + 200, `reset at ${first.resetAtMs - clock.now()} ms`);
        assert.equal((await counters.increment(k, 200)).count, 2);
        assert.equal((await counters.increment(k, 200)).count, 3);
        assert.equal((await counters.get(k))?.count, 3);
        await pass(clock, 260);
        assert.equal(await counters.get(k), undefined, 'the window is over');
        assert.equal((await counters.increment(k, 200)).count, 1);
      } finally {
        await close();
      }
    });

    it('decrements a live window, never below zero and never creating one; deletes', async () => {
      const clock = new ManualClock(1_000_000);
      const { counters, close } = await make(clock);
      try {
        const k = key();
        await counters.decrement(k);
        assert.equal(await counters.get(k), undefined, 'a decrement creates nothing');
        await counters.increment(k, 10_000);
        await counters.decrement(k);
        await counters.decrement(k);
        assert.equal((await counters.get(k))?.count ?? 0, 0);
        await counters.increment(k, 10_000);
        await counters.increment(k, 10_000);
        await counters.delete(k);
        assert.equal(await counters.get(k), undefined);
        assert.equal((await counters.increment(k, 10_000)).count, 1);
      } finally {
        await close();
      }
    });

    it('counts attempts under way: concurrent increments and decrements balance, never below zero', async () => {
      const clock = new ManualClock(1_000_000);
      const { counters, close } = await make(clock);
      try {
        const k = key();
        await Promise.all(
          Array.from({ length: 50 }, async () => {
            await counters.increment(k, 10_000);
            await counters.decrement(k);
          }),
        );
        assert.equal((await counters.get(k))?.count, 0, 'every attempt ended');
        await Promise.all(Array.from({ length: 5 }, () => counters.increment(k, 10_000)));
        await Promise.all(Array.from({ length: 20 }, () => counters.decrement(k)));
        assert.equal((await counters.get(k))?.count, 0, 'more decrements than increments stop at zero');
        assert.equal((await counters.increment(k, 10_000)).count, 1, 'and the next increment counts from zero');
      } finally {
        await close();
      }
    });

    it('keeps the end of a window a decrement touched, and creates none once it is over', async () => {
      const clock = new ManualClock(1_000_000);
      const { counters, close } = await make(clock);
      try {
        const k = key();
        const first = await counters.increment(k, 200);
        await counters.increment(k, 200);
        await counters.decrement(k);
        const left = await counters.get(k);
        assert.equal(left?.count, 1);
        assert.ok(left && left.resetAtMs <= first.resetAtMs + 20, `a decrement does not extend the window (${(left?.resetAtMs ?? 0) - first.resetAtMs} ms later)`);
        await pass(clock, 260);
        assert.equal(await counters.get(k), undefined, 'the window ends when it was set to, count left or not');
        await counters.decrement(k);
        assert.equal(await counters.get(k), undefined, 'a decrement after the window creates nothing');
        assert.equal((await counters.increment(k, 200)).count, 1);
      } finally {
        await close();
      }
    });

    it('keeps keys apart, and counts every one of many concurrent increments', async () => {
      const clock = new ManualClock(1_000_000);
      const { counters, close } = await make(clock);
      try {
        const [a, b] = [key(), key()];
        await Promise.all(Array.from({ length: 100 }, () => counters.increment(a, 10_000)));
        await counters.increment(b, 10_000);
        assert.equal((await counters.get(a))?.count, 100);
        assert.equal((await counters.get(b))?.count, 1);
      } finally {
        await close();
      }
    });
  });
}
