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

  describeCounterContract(
    'RedisCounterStore',
    async (clock) => {
      const counters = await RedisCounterStore.connect(redis.url, { clock, log: silentLogger });
      return { counters, close: () => counters.close() };
    },
    { realTime: true },
  );

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

  it('counts on the node while Redis is away, counts each fallback, and goes back to Redis when it returns', async () => {
    let own = await startRedis();
    const clock = new ManualClock(1_000_000);
    const fallbacks: string[] = [];
    const counters = await RedisCounterStore.connect(own.url, { clock, log: silentLogger, onFallback: (op) => void fallbacks.push(op) });
    let other: RedisCounterStore | undefined;
    try {
      assert.equal((await counters.increment('away', 60_000)).count, 1);
      await own.stop();
      assert.equal((await counters.increment('away', 60_000)).count, 1, 'a fresh per-node window while Redis is away');
      assert.equal((await counters.increment('away', 60_000)).count, 2);
      assert.deepEqual(fallbacks, ['increment', 'increment']);

      // Redis restarted empty on the same address: this node reconnects by itself (within its 2 s retry step).
      own = await startRedis(own.port);
      const deadline = Date.now() + 15_000;
      for (let inRedis = false; !inRedis;) {
        if (Date.now() > deadline) assert.fail('never went back to Redis');
        const fellBack = fallbacks.length;
        await counters.increment('probe', 60_000);
        inRedis = fallbacks.length === fellBack;
        if (!inRedis) await new Promise((r) => setTimeout(r, 100));
      }
      other = await RedisCounterStore.connect(own.url, { clock, log: silentLogger });
      const before = (await other.get('back'))?.count ?? 0;
      await counters.increment('back', 60_000);
      assert.equal((await other.get('back'))?.count, before + 1, 'shared again: another node sees the count');
    } finally {
      await counters.close();
      await other?.close();
      await own.stop();
    }
  });

  it('names Redis when it cannot be reached at start', async () => {
    await assert.rejects(
      RedisCounterStore.connect('redis://127.0.0.1:1', { clock: new ManualClock(0), log: silentLogger }),
      (err: Error & { code?: string }) => err.code === 'BULWARK_ERR_COUNTERS_UNAVAILABLE' && /Redis at redis:\/\/127\.0\.0\.1:1 is unreachable/.test(err.message),
    );
  });
});
