import assert from 'node:assert/strict';
import { it } from 'node:test';
import { GroupCommit } from './group-commit.js';

/** A write whose batches finish only when the test says so. */
function controlledWrite() {
  const batches: { items: number[]; finish: () => void }[] = [];
  let written: () => void = () => undefined;
  const write = (items: number[]) =>
    new Promise<number[]>((resolve) => {
      batches.push({ items, finish: () => resolve(items.map((n) => n * 10)) });
      written();
    });
  /** Resolves when the next batch is handed to the write. */
  const nextWrite = () =>
    new Promise<void>((resolve) => {
      written = resolve;
    });
  return { batches, write, nextWrite };
}

it('writes full batches at once, at most two at a time, and grows the next one while both are under way', async () => {
  const { batches, write, nextWrite } = controlledWrite();
  const gc = new GroupCommit(write, { maxItems: 2, maxDelayMs: 10_000, maxInFlight: 2 });
  const results = [1, 2, 3, 4, 5, 6, 7].map((n) => gc.add(n));
  assert.deepEqual(
    batches.map((b) => b.items),
    [
      [1, 2],
      [3, 4],
    ],
    'two full batches under way; the rest waits',
  );
  const writing = nextWrite();
  batches[0]?.finish();
  await writing;
  assert.deepEqual(
    batches.map((b) => b.items),
    [
      [1, 2],
      [3, 4],
      [5, 6, 7],
    ],
    'what waited goes out as one batch when a slot frees',
  );
  batches[1]?.finish();
  batches[2]?.finish();
  assert.deepEqual(await Promise.all(results), [10, 20, 30, 40, 50, 60, 70], 'every caller gets its own result');
});

it('writes a partial batch after the delay, and drain writes what waits', async () => {
  const { batches, write, nextWrite } = controlledWrite();
  const gc = new GroupCommit(write, { maxItems: 100, maxDelayMs: 5 });
  const writing = nextWrite();
  const first = gc.add(1);
  assert.equal(batches.length, 0, 'a partial batch waits for its delay');
  await writing;
  assert.deepEqual(
    batches.map((b) => b.items),
    [[1]],
  );
  batches[0]?.finish();
  assert.equal(await first, 10);
  const second = gc.add(2);
  const drained = gc.drain();
  assert.deepEqual(
    batches.map((b) => b.items),
    [[1], [2]],
  );
  batches[1]?.finish();
  await drained;
  assert.equal(await second, 20);
});

it('rejects every caller of a batch whose write fails', async () => {
  const gc = new GroupCommit<number, number>(() => Promise.reject(new Error('disk full')), { maxItems: 2, maxDelayMs: 5 });
  const results = await Promise.allSettled([gc.add(1), gc.add(2)]);
  assert.deepEqual(
    results.map((r) => r.status),
    ['rejected', 'rejected'],
  );
});

it('resumes the callers of a large batch a bounded number per turn of the event loop', async () => {
  const { batches, write, nextWrite } = controlledWrite();
  const gc = new GroupCommit(write, { maxItems: 10, maxDelayMs: 10_000, resumePerTurn: 4 });
  const writing = nextWrite();
  const resumed: number[] = [];
  const results = Array.from({ length: 10 }, (_, i) => gc.add(i).then((r) => resumed.push(r)));
  await writing;
  batches[0]?.finish();
  // The write resolves; the first four callers resume in that turn, the next four on the next one.
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(resumed.length, 4);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(resumed.length, 8);
  await Promise.all(results);
  assert.deepEqual(resumed, [0, 10, 20, 30, 40, 50, 60, 70, 80, 90], 'in order, every one');
});
