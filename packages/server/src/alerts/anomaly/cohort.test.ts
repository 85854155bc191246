import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { detectCohortOutliers } from './cohort.js';
import { mulberry32 } from './rng.js';

function cohort(seed: number, n: number, mean = 40, sigma = 2): Map<string, number> {
  const rng = mulberry32(seed);
  return new Map(Array.from({ length: n }, (_, i) => [`dev-${i}`, mean + sigma * rng.gaussian()] as const));
}

describe('detectCohortOutliers', () => {
  it('flags the device far from its peers, and only it, with a signed robust score', () => {
    const latest = cohort(1, 30);
    latest.set('dev-7', 40 + 2 * 9);
    latest.set('dev-12', 40 - 2 * 7);
    const report = detectCohortOutliers(latest);
    assert.equal(report.status, 'evaluated');
    assert.deepEqual(
      report.outliers.map((o) => o.deviceId),
      ['dev-7', 'dev-12'],
    );
    const [high, low] = report.outliers;
    assert.ok((high?.score ?? 0) > 5 && (low?.score ?? 0) < -5);
    assert.match(high?.detail ?? '', /^\+\d+\.\dσ from the median 4\d\.?\d* of 30 peers/);
  });

  it('raises nothing on a cohort of plain noise', () => {
    for (let seed = 1; seed <= 50; seed += 1) assert.deepEqual(detectCohortOutliers(cohort(seed, 25)).outliers, [], `seed ${seed}`);
  });

  it('is not fooled by a few broken devices pulling the centre (median and MAD, not mean and SD)', () => {
    const latest = cohort(2, 12);
    for (const id of ['dev-0', 'dev-1', 'dev-2']) latest.set(id, 1000);
    const report = detectCohortOutliers(latest);
    assert.deepEqual(report.outliers.map((o) => o.deviceId).sort(), ['dev-0', 'dev-1', 'dev-2']);
  });

  it('gives no verdict under the minimum cohort size, counting finite readings only', () => {
    const latest = { a: 1, b: 1.1, c: 0.9, d: 50, e: Number.NaN, f: Number.POSITIVE_INFINITY };
    assert.deepEqual(detectCohortOutliers(latest), { status: 'too-small', size: 4, outliers: [] });
    const report = detectCohortOutliers(latest, { minCohort: 4 });
    assert.equal(report.status, 'evaluated');
    assert.deepEqual(
      report.outliers.map((o) => o.deviceId),
      ['d'],
    );
  });

  it('falls back to the mean absolute deviation when most peers read the same, and honours minSpread', () => {
    const latest = { a: 20, b: 20, c: 20, d: 20, e: 20, f: 20, g: 20.5, h: 35 };
    const report = detectCohortOutliers(latest);
    assert.equal(report.status, 'evaluated');
    assert.deepEqual(
      report.outliers.map((o) => o.deviceId),
      ['h'],
    );
    assert.deepEqual(detectCohortOutliers(latest, { minSpread: 5 }).outliers, []);
    assert.deepEqual(detectCohortOutliers({ a: 3, b: 3, c: 3, d: 3, e: 3 }).outliers, []);
  });

  it('refuses options out of range', () => {
    assert.throws(() => detectCohortOutliers({}, { minCohort: 1 }), RangeError);
    assert.throws(() => detectCohortOutliers({}, { thresholdSigma: 0 }), RangeError);
    assert.throws(() => detectCohortOutliers({}, { minSpread: -1 }), RangeError);
  });
});
