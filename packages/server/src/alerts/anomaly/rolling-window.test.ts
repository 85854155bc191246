import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mulberry32 } from './rng.js';
import { MAD_TO_SIGMA, RollingWindow } from './rolling-window.js';

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const madSigma = (xs: readonly number[]) => MAD_TO_SIGMA * median(xs.map((x) => Math.abs(x - median(xs))));

describe('RollingWindow', () => {
  it('keeps the last `capacity` readings and matches a brute-force median and MAD at every step', () => {
    const rng = mulberry32(3);
    const w = new RollingWindow(9);
    const all: number[] = [];
    for (let i = 0; i < 400; i += 1) {
      // Repeated values and ties on purpose: a quarter of the readings come from a set of five.
      const x = rng.next() < 0.25 ? rng.int(0, 4) : rng.gaussian() * 3;
      w.push(x);
      all.push(x);
      const last = all.slice(-9);
      assert.deepEqual(w.values(), last);
      assert.equal(w.count, last.length);
      assert.equal(w.median(), median(last));
      assert.ok(Math.abs(w.madSigma() - madSigma(last)) < 1e-12, `step ${i}`);
    }
  });

  it('keeps only the newest readings on keepNewest and restarts from reset', () => {
    const w = new RollingWindow(8);
    for (const x of [5, 1, 4, 2, 3, 9, 7]) w.push(x);
    w.keepNewest(3);
    assert.deepEqual(w.values(), [3, 9, 7]);
    assert.equal(w.median(), 7);
    w.push(1);
    assert.deepEqual(w.newest(2), [7, 1]);
    w.reset([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.deepEqual(w.values(), [3, 4, 5, 6, 7, 8, 9, 10]);
    w.reset();
    assert.equal(w.count, 0);
    assert.ok(Number.isNaN(w.median()));
    assert.ok(Number.isNaN(w.madSigma()));
  });
});
