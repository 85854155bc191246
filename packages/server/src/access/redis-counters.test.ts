import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { ManualClock, silentLogger } from '@bulwark/core';
import { type RunningEngine, describeWith, startRedis } from '../testing/services.js';
import { describeCounterContract } from './counters-contract.js';
import { RedisCounterStore } from './redis-counters.js';

describeWith('RedisCounterStore on a real redis-server', ['redis-server'], () => {
  let redis: RunningEngine;
  before(async () => {
    redis = await startRedis();
  });
  after(() => redis.stop());

  describeCounterContract('RedisCounterStore', async (clock) => {
    const counters = await RedisCounterStore.connect(redis.url, { clock, log: silentLogger });
    return { counters, close: () => counters.close() };
  }, { realTime: true });

  it('is shared: two nodes count into one window', async () => {
    const clock = new ManualClock(1_000_000);
    const [a, b] = await Promise.all([RedisCounterStore.connect(redis.url, { clock, log: silentLogger }), RedisCounterStore.connect(redis.url, { clock, log: silentLogger })]);
    try {
      await a.increment('shared-login', 60_000);
      await b.increment('shared-login', 60_000);
      assert.equal((await a.increment('shared-login', 60_000)).count, 3);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('counts on the node while Redis is away, and counts each fallback', async () => {
    const own = await startRedis();
    const clock = new ManualClock(1_000_000);
    const fallbacks: string[] = [];
    const counters = await RedisCounterStore.connect(own.url, { clock, log: silentLogger, onFallback: (op) => void fallbacks.push(op) });
    try {
      assert.equal((await counters.increment('away', 60_000)).count, 1);
      await own.stop();
      assert.equal((await counters.increment('away', 60_000)).count, 1, 'a fresh per-node window while Redis is away');
      assert.equal((await counters.increment('away', 60_000)).count, 2);
      assert.deepEqual(fallbacks, ['increment', 'increment']);
    } finally {
      await counters.close();
      await own.stop();
    }
  });

  it('names Redis when it cannot be reached at start', async () => {
    await assert.rejects(RedisCounterStore.connect('redis://127.0.0.1:1', { clock: new ManualClock(0), log: silentLogger }),
      (err: Error & { code?: string }) => err.code === 'BULWARK_ERR_COUNTERS_UNAVAILABLE' && /Redis at redis:\/\/127\.0\.0\.1:1 is unreachable/.test(err.message));
  });
});
