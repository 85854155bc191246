import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Job } from '../../jobs/index.js';
import { type MakeStore, T0 } from './principal-repository.contract.js';

const job = (id: string, over: Partial<Job> = {}): Job => ({
  id,
  name: `job ${id}`,
  operation: { type: 'twin-patch', patch: { intervalS: 30 } },
  group: 'site7',
  pacing: { ratePerSecond: 500, maxConcurrent: 100, window: null },
  deviceTimeoutMs: 30_000,
  maxRetries: 1,
  abort: { failedPercent: 20, minFinished: 10 },
  state: 'running',
  reason: null,
  deviceCount: 0,
  skipped: { decommissioned: 2 },
  history: [{ at: T0, state: 'running', actor: 'usr_1', reason: 'created' }],
  createdBy: 'usr_1',
  createdAt: T0,
  updatedAt: T0,
  settledAt: null,
  ...over,
});

const ids = (n: number) => Array.from({ length: n }, (_, i) => `d-${String(i).padStart(4, '0')}`);

/** JobRepository: a job with its device entries; claims that never overlap; ends, expiry and requeue; answers found by device. */
export function describeJobRepository(make: MakeStore): void {
  describe('JobRepository contract', () => {
    it('keeps a job with its entries, and moves it only by compare-and-set', async (t) => {
      const { jobs } = await make(t);
      const a = job('job_a', { deviceCount: 3 });
      await jobs.insert(a, ids(3));
      assert.deepEqual(await jobs.get('job_a'), a);
      assert.deepEqual(await jobs.counts('job_a'), { queued: 3 });
      const paused = { ...a, state: 'paused' as const, reason: 'by hand', updatedAt: T0 + 1, history: [...a.history, { at: T0 + 1, state: 'paused' as const, actor: 'usr_1', reason: 'by hand' }] };
      assert.equal(await jobs.update(paused, T0), true);
      assert.equal(await jobs.update({ ...paused, state: 'running', updatedAt: T0 + 2 }, T0), false, 'a stale writer loses');
      assert.deepEqual(await jobs.get('job_a'), paused);
      await jobs.insert(job('job_b', { createdAt: T0 + 5, updatedAt: T0 + 5, state: 'completed', settledAt: T0 + 6 }), []);
      await jobs.insert(job('job_0', { createdAt: T0 + 5, updatedAt: T0 + 5, group: 'other' }), []);
      assert.deepEqual(
        (await jobs.list({ limit: 10 })).map((j) => j.id),
        ['job_b', 'job_0', 'job_a'],
        'newest first (then by id)',
      );
      assert.deepEqual(
        (await jobs.list({ limit: 10, before: 'job_0' })).map((j) => j.id),
        ['job_a'],
        'paged by creation time, then id',
      );
      assert.deepEqual(
        (await jobs.list({ limit: 1, before: 'job_b' })).map((j) => j.id),
        ['job_0'],
      );
      assert.deepEqual(
        (await jobs.list({ limit: 10, groups: ['other'] })).map((j) => j.id),
        ['job_0'],
      );
      assert.deepEqual(await jobs.list({ limit: 10, groups: [] }), []);
      assert.deepEqual(
        (await jobs.list({ states: ['paused'], limit: 10 })).map((j) => j.id),
        ['job_a'],
      );
      assert.deepEqual(
        (await jobs.unsettled(10)).map((j) => j.id),
        ['job_a', 'job_0'],
      );
      await assert.rejects(jobs.insert(job('job_a'), ['x']), 'ids are unique');
    });

    it('hands each queued entry to one claimer, ends entries only from the states named, and times out or requeues the silent', async (t) => {
      const { jobs } = await make(t);
      await jobs.insert(job('job_c', { deviceCount: 50 }), ids(50));
      const [x, y] = await Promise.all([jobs.claim('job_c', 30, T0 + 10), jobs.claim('job_c', 30, T0 + 10)]);
      const claimed = [...x, ...y].map((e) => e.deviceId);
      assert.equal(claimed.length, 50, 'every entry claimed once');
      assert.equal(new Set(claimed).size, 50, 'no entry twice');
      assert.ok(x.every((e) => e.state === 'in_progress' && e.attempts === 1 && e.dispatchedAt === T0 + 10));
      assert.deepEqual(await jobs.claim('job_c', 10, T0 + 11), []);

      await jobs.setRef('job_c', 'd-0000', '7');
      assert.equal(await jobs.finish('job_c', 'd-0000', ['in_progress'], { state: 'succeeded', reason: null, detail: null, at: T0 + 20 }), true);
      assert.equal(await jobs.finish('job_c', 'd-0000', ['in_progress'], { state: 'failed', reason: 'late', detail: null, at: T0 + 21 }), false, 'an ended entry stays ended');
      assert.equal(await jobs.finish('job_c', 'd-0001', ['in_progress'], { state: 'failed', reason: 'config_invalid', detail: 'intervalS: too big', at: T0 + 20 }), true);
      const [done] = await jobs.devices('job_c', { states: ['succeeded'], limit: 10 });
      assert.deepEqual([done?.deviceId, done?.ref, done?.finishedAt], ['d-0000', '7', T0 + 20]);

      await jobs.requeue('job_c', ['d-0002', 'd-0003']);
      const requeued = await jobs.devices('job_c', { states: ['queued'], limit: 10 });
      assert.deepEqual(
        requeued.map((e) => [e.deviceId, e.attempts, e.dispatchedAt]),
        [
          ['d-0002', 0, null],
          ['d-0003', 0, null],
        ],
        'a claim never sent is not an attempt',
      );

      // 46 in progress, dispatched at T0 + 10, one attempt each: with two attempts allowed they go back to the queue...
      assert.deepEqual(await jobs.expire('job_c', T0 + 11, 2, T0 + 100), { retried: 46, timedOut: 0 });
      const again = await jobs.claim('job_c', 100, T0 + 200);
      assert.equal(again.length, 48);
      assert.ok(again.filter((e) => e.deviceId !== 'd-0002' && e.deviceId !== 'd-0003').every((e) => e.attempts === 2));
      // ...and after the second, those out of attempts time out while the others are retried.
      assert.deepEqual(await jobs.expire('job_c', T0 + 201, 2, T0 + 300), { retried: 2, timedOut: 46 });
      assert.deepEqual(await jobs.counts('job_c'), { succeeded: 1, failed: 1, timed_out: 46, queued: 2 });
      assert.equal(await jobs.cancelQueued('job_c', 'job_cancelled', T0 + 400), 2);
      assert.deepEqual(await jobs.reasons('job_c', 10), [
        { state: 'timed_out', reason: 'no_answer', count: 46 },
        { state: 'cancelled', reason: 'job_cancelled', count: 2 },
        { state: 'failed', reason: 'config_invalid', count: 1 },
      ]);
      const page1 = await jobs.devices('job_c', { limit: 20 });
      const page2 = await jobs.devices('job_c', { limit: 40, after: page1.at(-1)!.deviceId });
      assert.deepEqual([page1.length, page2.length, page2[0]!.deviceId], [20, 30, 'd-0020']);
    });

    it("finds a device's live entries with what their job does", async (t) => {
      const { jobs } = await make(t);
      await jobs.insert(job('job_t', { deviceCount: 2 }), ['gw-1', 'gw-2']);
      await jobs.insert(job('job_k', { operation: { type: 'command', name: 'blink', params: {} }, deviceCount: 1 }), ['gw-1']);
      await jobs.insert(job('job_old', { state: 'cancelled', settledAt: T0, deviceCount: 1 }), ['gw-1']);
      await jobs.claim('job_t', 1, T0 + 1);
      await jobs.setRef('job_t', 'gw-1', '3');
      const live = await jobs.live('gw-1');
      assert.deepEqual(
        live.map((e) => [e.jobId, e.state, e.operation, e.ref]),
        [
          ['job_k', 'queued', 'command', null],
          ['job_t', 'in_progress', 'twin-patch', '3'],
        ],
        'queued entries of ended jobs are not live',
      );
      assert.deepEqual(await jobs.live('gw-9'), []);
    });
  });
}
