import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, it } from 'node:test';
import { ManualClock, silentLogger } from '@bulwark/core';
import { type RunningEngine, describeWith, startRedis } from '../testing/services.js';
import { describeCounterContract } from './counters-contract.js';
import { RedisCounterStore } from './redis-counters.js';
import { Throttle } from './throttle.js';

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

  it('shares authentication attempts under way between nodes, and each ends only its own', async () => {
    const clock = new ManualClock(1_000_000);
    const settings = { perAddressPerMinute: 1000, perPrincipalPerMinute: 1000, lockoutThreshold: 3, keyLockoutThreshold: 3, lockoutWindowMs: 60_000, lockoutMs: 60_000 };
    const [a, b] = await Promise.all([RedisCounterStore.connect(redis.url, { clock, log: silentLogger }), RedisCounterStore.connect(redis.url, { clock, log: silentLogger })]);
    try {
      const [onA, onB] = [new Throttle(a, settings, clock), new Throttle(b, settings, clock)];
      const subject = Throttle.address(`node-test-${randomBytes(4).toString('hex')}`);
      const running = await Promise.all([onA.begin([subject]), onB.begin([subject]), onA.begin([subject])]);
      await assert.rejects(onB.begin([subject]), { code: 'BULWARK_ERR_RATE_LIMITED' });
      await running[1]?.end(false);
      await running[1]?.end(false);
      const third = await onA.begin([subject]);
      await assert.rejects(onB.begin([subject]), { code: 'BULWARK_ERR_RATE_LIMITED' }, 'ending one attempt twice frees one slot, once');
      await running[0]?.end(true);
      await running[2]?.end(false);
      await third.end(false);
      const again = await Promise.all([onB.begin([subject]), onB.begin([subject])]);
      await assert.rejects(onA.begin([subject]), { code: 'BULWARK_ERR_RATE_LIMITED' }, 'the failure and two under way make three');
      assert.deepEqual(await again[0]?.end(true), []);
      assert.deepEqual(await again[1]?.end(true), [subject], 'the third failure locks, on every node');
      await assert.rejects(onA.begin([subject]), { code: 'BULWARK_ERR_AUTH_LOCKED' });
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
